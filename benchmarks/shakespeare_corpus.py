"""Parse the Gutenberg plays, build every Shakespeare client, and print what it gives.

Prints the time and peak memory of parsing the corpus and building all N
clients of both partitions (their encoded texts and window indices), and the
corpus statistics beside the paper's (1,146 clients; 3,564,579 train and
870,014 test characters).

    python -m benchmarks.shakespeare_corpus [DATA_DIR]

DATA_DIR defaults to $FEDAVG_DATA_DIR, else ../shared/data beside the checkout.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from tasks.shakespeare.data import load_directory, play_files
from tasks.shakespeare.federation import central_test_set, federate
from tasks.shakespeare.parser import read_plays
from tasks.shakespeare.windows import decode

PAPER = {"clients": 1146, "train": 3_564_579, "test": 870_014}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    directory = Path(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FEDAVG_DATA_DIR", default)
    )
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    roles = load_directory(directory)
    parsed = time.perf_counter()
    built = {}
    for partition in ("noniid", "iid"):
        clients = federate(roles, partition, len(roles), seed=0)
        built[partition] = [c.windows() for c in clients]
    test = central_test_set(roles)
    done = time.perf_counter()
    print(f"data: {directory}")
    print(
        f"parse + roles: {parsed - start:.2f} s; + build all {len(roles)} clients of both "
        f"partitions and the central test set: {done - start:.2f} s total (goal < 30 s)"
    )
    print(
        f"peak RSS: {_peak_rss_mb():.0f} MB (python + numpy + torch imports: "
        f"{rss_before:.0f} MB; goal < 2048 MB)"
    )

    plays = read_plays(play_files(directory))
    all_roles = sum(len(p.roles) for p in plays)
    print(
        f"\nplays: {len(plays)}; roles: {all_roles}; with >= 2 lines (clients): {len(roles)} "
        f"(paper: {PAPER['clients']}); dropped: {all_roles - len(roles)}; "
        f"unattributed lines: {sum(p.unattributed_lines for p in plays)}"
    )
    leaf_rule = {p.name: sum(len(lines) > 2 for lines in p.roles.values()) for p in plays}
    print(
        "roles with > 2 lines (the rule in the paper's authors' script, LEAF): "
        f"{sum(leaf_rule.values())}; without All's Well (which that script skips): "
        f"{sum(leaf_rule.values()) - leaf_rule.get('alls_well_that_ends_well', 0)}"
    )
    natural = built["noniid"]
    train_n = np.array([len(tr) for tr, _ in natural])
    test_n = np.array([len(te) for _, te in natural])
    train_lines = sum(len(r.train) for r in roles)
    test_lines = sum(len(r.test) for r in roles)
    print(f"lines: {train_lines} train, {test_lines} test")
    print(
        f"samples (= characters): {train_n.sum():,} train (paper {PAPER['train']:,}), "
        f"{test_n.sum():,} test (paper {PAPER['test']:,}); central test set {len(test):,}"
    )
    qs = np.percentile(train_n, [0, 10, 25, 50, 75, 90, 99, 100]).astype(int)
    print(
        "train samples per noniid client: min/p10/p25/median/p75/p90/p99/max = "
        + "/".join(str(q) for q in qs)
        + f"; mean {train_n.mean():.0f}"
    )
    iid_n = np.array([len(tr) for tr, _ in built["iid"]])
    print(
        f"train samples per iid client: min {iid_n.min()}, median {int(np.median(iid_n))}, "
        f"max {iid_n.max()} (lines dealt equally)"
    )
    mean_lines = train_lines / len(roles)
    for batch in (10, 50):
        print(
            f"u = E n / (K B) at E=1, B={batch}: {train_n.mean() / batch:.1f} with n in samples "
            f"(80-char windows), {mean_lines / batch:.1f} with n in lines "
            f"(paper: {'7.4' if batch == 10 else '1.5'})"
        )
    counts = test.label_counts()
    used = np.flatnonzero(test.label_counts() + sum(tr.label_counts() for tr, _ in natural))
    top = int(counts.argmax())
    print(
        f"vocabulary: {len(used)} distinct bytes in the text, of 256 classes; "
        f"most common test label {decode(np.array([top]))!r} = {counts[top] / counts.sum():.4f}"
    )


if __name__ == "__main__":
    main()
