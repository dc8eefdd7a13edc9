"""The cost of a Shakespeare round and of a central evaluation: windows before, lines after.

Issue 21 changed the task's examples from LEAF's 80-character windows (one label, the
next character, per window; the model unrolled 80 steps per label) to the paper's lines
(every next character of a line predicted, batches padded to their longest line). This
script measures both side by side, in one invocation, on this machine, with the same
settings: the K = N clients of the non-IID partition, the clients the strategy samples
in round 1 at C = 0.1, one local epoch with B = 10 from the same w_0, and one pass over
the central test set.

    python -m benchmarks.shakespeare_cost [--before 4dce4dd] [--clients 12] [--eval-examples 20000]

"before" is a git commit of this repository (checked out in a temporary worktree); the
same measurement code runs in both trees (``--measure``), through the task API both have
(``ShakespeareTask.client_data``, ``central_test``, ``tasks.training``). Each tree runs
in one process with one torch thread, as one ClientApp per core does
(``client-threads = 1``). ``--clients`` and ``--eval-examples`` time a prefix of the
round's sample and a seeded sample of the test set instead (the window task's full
round and evaluation take tens of minutes here): the round and the evaluation are then
also given scaled up by SGD steps and by examples, and the table says which figures
were scaled.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "task": "shakespeare-lstm",
    "partition": "noniid",
    "fraction-train": 0.1,
    "local-epochs": 1,
    "batch-size": 10,
    "lr": 1.47,
}


def measure(data_dir: str, max_clients: int, eval_examples: int) -> dict[str, Any]:
    """Time round 1's local training and one central evaluation with the code on sys.path."""
    import numpy as np
    import torch

    from protocol.config import parse_config
    from strategies.sampling import clients_per_round, sample_clients
    from tasks.examples import sample_examples
    from tasks.shakespeare.data import load_roles
    from tasks.shakespeare.task import ShakespeareTask
    from tasks.training import evaluate, train_local

    torch.set_num_threads(1)
    config = parse_config({**SETTINGS, "data-dir": data_dir})
    num_clients = len(load_roles(data_dir))
    sampled = sample_clients(
        range(num_clients),
        clients_per_round(config.fraction_train, num_clients),
        seed=config.seeds["sampling"],
        server_round=1,
    )
    task = ShakespeareTask()
    torch.manual_seed(config.seeds["model"])
    model = task.build_model()
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    steps_all = examples_all = 0
    steps_timed = examples_timed = 0
    train_seconds = 0.0
    for i, pid in enumerate(sampled):
        train = task.client_data(config, pid, num_clients).train
        steps = math.ceil(len(train) / config.batch_size)
        steps_all, examples_all = steps_all + steps, examples_all + len(train)
        if i >= max_clients:
            continue
        model.load_state_dict(w0)
        start = time.perf_counter()
        train_local(
            model,
            train,
            epochs=1,
            batch_size=config.batch_size,
            lr=config.lr,
            rng=np.random.default_rng([config.seed, 1, pid]),
        )
        train_seconds += time.perf_counter() - start
        steps_timed, examples_timed = steps_timed + steps, examples_timed + len(train)
    test = task.central_test(config)
    scored = (
        sample_examples(test, eval_examples, config.seeds["partition"]) if eval_examples else test
    )
    model.load_state_dict(w0)
    start = time.perf_counter()
    evaluate(model, scored)
    eval_seconds = time.perf_counter() - start
    return {
        "clients": num_clients,
        "sampled": len(sampled),
        "timed_clients": min(max_clients, len(sampled)),
        "round_examples": examples_all,
        "round_steps": steps_all,
        "timed_steps": steps_timed,
        "train_seconds_timed": train_seconds,
        "train_seconds_round": train_seconds * steps_all / steps_timed,
        "test_examples": len(test),
        "eval_examples_timed": len(scored),
        "eval_seconds_timed": eval_seconds,
        "eval_seconds_full": eval_seconds * len(test) / len(scored),
    }


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--measure`` in a subprocess whose imports come from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure",
        "--data-dir",
        args.data_dir,
        "--clients",
        str(args.clients),
        "--eval-examples",
        str(args.eval_examples),
    ]
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement in {tree} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def table(before: dict[str, Any], after: dict[str, Any], ref: str) -> str:
    def scaled(result: dict[str, Any], kind: str) -> str:
        if kind == "train":
            full = result["timed_clients"] == result["sampled"]
            value = result["train_seconds_round"]
        else:
            full = result["eval_examples_timed"] == result["test_examples"]
            value = result["eval_seconds_full"]
        return f"{value:,.1f}" + ("" if full else " (scaled)")

    rows = [
        ("clients K", "clients", "{:,}"),
        ("clients sampled in round 1 (C = 0.1)", "sampled", "{:,}"),
        ("examples of those clients (n_k summed)", "round_examples", "{:,}"),
        ("SGD steps of the round (E = 1, B = 10)", "round_steps", "{:,}"),
        ("clients timed", "timed_clients", "{:,}"),
        ("s for the timed clients' training", "train_seconds_timed", "{:,.1f}"),
        ("central test examples", "test_examples", "{:,}"),
        ("examples evaluated", "eval_examples_timed", "{:,}"),
        ("s for those", "eval_seconds_timed", "{:,.1f}"),
    ]
    lines = [
        f"| one process, one torch thread | before (windows, {ref}) | after (lines) | "
        "before / after |",
        "|---|---|---|---|",
    ]
    for label, key, fmt in rows:
        ratio = before[key] / after[key] if after[key] else float("nan")
        lines.append(
            f"| {label} | {fmt.format(before[key])} | {fmt.format(after[key])} | {ratio:.1f}x |"
        )
    for label, kind, key in (
        ("**s of local training per round**", "train", "train_seconds_round"),
        ("**s of one central evaluation**", "eval", "eval_seconds_full"),
    ):
        lines.append(
            f"| {label} | {scaled(before, kind)} | {scaled(after, kind)} | "
            f"**{before[key] / after[key]:.1f}x** |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("FEDAVG_DATA_DIR", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--before", default="4dce4dd", help="the window task's commit")
    parser.add_argument("--clients", type=int, default=10**9, help="time this many sampled clients")
    parser.add_argument("--eval-examples", type=int, default=0, help="0: the whole test set")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    given = args.data_dir
    args.data_dir = str(Path(args.data_dir).resolve())  # the trees run in their own cwd
    if args.measure:
        print(json.dumps(measure(args.data_dir, args.clients, args.eval_examples)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        worktree = Path(scratch) / "before"
        subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "worktree",
                "add",
                "-q",
                "--detach",
                str(worktree),
                args.before,
            ],
            check=True,
        )
        try:
            before = run_tree(worktree, args)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
            )
    after = run_tree(REPO, args)
    print(f"data: {given}; settings: {SETTINGS}")
    print(table(before, after, args.before))


if __name__ == "__main__":
    main()
