"""Parse the Gutenberg plays, build every Shakespeare client, and print what it gives.

Prints the time and peak memory of parsing the corpus and building all N
clients of both partitions (their encoded lines), the corpus statistics beside
the paper's (1,146 clients; 3,564,579 train and 870,014 test characters), and
the u column of Table 2 (u = E n / (K B), the expected local updates per round
of a client) computed from the clients as built, beside the paper's.

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

from benchmarks.paper import all_rows
from tasks.shakespeare.data import load_directory, play_files
from tasks.shakespeare.federation import central_test_set, federate
from tasks.shakespeare.lines import decode
from tasks.shakespeare.parser import Play, read_plays

PAPER = {"clients": 1146, "train": 3_564_579, "test": 870_014}
# Table 2's u column for Shakespeare, by (E, B); B = 0 is B = inf.
PAPER_U = {(1, 0): 1.0, (1, 50): 1.5, (5, 0): 5.0, (1, 10): 7.4, (5, 50): 7.4, (5, 10): 37.1}
PAPER_MEAN_TRAIN = 74.2  # n / K behind every u above: 37.1 = 5 * 74.2 / 10


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
        built[partition] = [c.examples() for c in clients]
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
    train_n = np.array([len(tr) for tr, _ in natural])  # n_k: train lines
    train_chars = sum(tr.num_targets() for tr, _ in natural)
    test_chars = sum(te.num_targets() for _, te in natural)
    print(
        f"examples (= lines, n_k): {train_n.sum():,} train, "
        f"{sum(len(te) for _, te in natural):,} test; central test set {len(test):,} lines"
    )
    print(
        f"predicted characters (each line's characters + its end): {train_chars:,} train "
        f"(paper {PAPER['train']:,} characters), {test_chars:,} test "
        f"(paper {PAPER['test']:,}); central test set {test.num_targets():,}"
    )
    qs = np.percentile(train_n, [0, 10, 25, 50, 75, 90, 99, 100]).astype(int)
    print(
        "train lines per noniid client: min/p10/p25/median/p75/p90/p99/max = "
        + "/".join(str(q) for q in qs)
        + f"; mean {train_n.mean():.1f}"
    )
    iid_n = np.array([len(tr) for tr, _ in built["iid"]])
    print(
        f"train lines per iid client: min {iid_n.min()}, median {int(np.median(iid_n))}, "
        f"max {iid_n.max()} (lines dealt equally)"
    )
    print(u_table(train_n.mean(), leaf_mean=leaf_mean_train_lines(plays)))
    counts = test.target_counts()
    used = np.flatnonzero(counts + sum(tr.target_counts() for tr, _ in natural))
    top = int(counts.argmax())
    print(
        f"vocabulary: {len(used)} distinct tokens (bytes, BOS excluded: it is never a target), "
        f"of 256 classes; most common test target {decode(np.array([top])) or repr(chr(top))!r}"
        f" = {counts[top] / counts.sum():.4f}"
    )


def leaf_mean_train_lines(plays: list[Play]) -> float:
    """Mean train lines per role under LEAF's rule (roles of more than 2 lines)."""
    kept = [len(lines) for p in plays for lines in p.roles.values() if len(lines) > 2]
    return float(np.mean([n - max(n // 5, 1) for n in kept]))


def u_table(mean_train: float, *, leaf_mean: float) -> str:
    """Table 2's Shakespeare rows: the paper's u beside ours, u = E n / (K B) (B = inf: u = E).

    The paper prints u rounded to one decimal; all its rows follow from one n / K,
    ``PAPER_MEAN_TRAIN`` = 37.1 / 5 * 10 = 74.2, so ours is compared with E 74.2 / B too.
    """
    lines = [
        "",
        f"u = E n / (K B); n / K = {mean_train:.1f} train lines per client as built "
        f"(paper: {PAPER_MEAN_TRAIN}; LEAF's rule of > 2 lines per role: {leaf_mean:.1f})",
        "| alg | E | B | paper u (printed) | paper u (E 74.2 / B) | our u | ours vs paper "
        "(printed / unrounded) | LEAF rule u |",
        "|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for row in all_rows():
        if row.task != "shakespeare-lstm" or (row.epochs, row.batch) in seen:
            continue
        seen.add((row.epochs, row.batch))
        epochs, batch = row.epochs, row.batch

        ours, exact, leaf = (
            float(epochs) if batch == 0 else epochs * mean / batch
            for mean in (mean_train, PAPER_MEAN_TRAIN, leaf_mean)
        )
        printed = PAPER_U[(epochs, batch)]
        lines.append(
            f"| {'FedSGD' if (epochs, batch) == (1, 0) else 'FedAvg'} | {epochs} | "
            f"{'inf' if batch == 0 else batch} | {printed} | {exact:.2f} | {ours:.2f} | "
            f"{(ours - printed) / printed:+.1%} / {(ours - exact) / exact:+.1%} | "
            f"{leaf:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
