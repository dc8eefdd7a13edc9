"""Seconds per round: simulation, the local federation with Flower's executor, and with ours.

    FEDAVG_DATA_DIR=/path/to/data python -m benchmarks.deploy_latency [--rounds 5]

For each task (the paper's MNIST 2NN and CNN) runs the same experiment, side
by side in one invocation, on three engines:

- ``simulation``: ``deploy/simulation/run.sh`` (Ray, ``num-supernodes=K``);
- ``flower``: ``deploy/local/run.sh`` with ``EXECUTOR=flower``: a real
  SuperLink and K SuperNodes on loopback (TLS, node authentication, each node
  holding its own prepared partition), Flower's SuperExec starting a fresh
  ``flwr-clientapp`` process per message;
- ``warm``: the same federation with ``EXECUTOR=warm`` (the default): the
  warm executor (clients/warm_executor/) forking a child per message.

K=3 SuperNodes, C=1 (every node every round), E=1, B=10 unless
``--run-config`` says otherwise. Prints per engine the seconds per round
(the median of rounds 2..R: round 1 pays one-off start-up), the largest
accuracy difference to simulation over all rounds (the curves must be
identical), the per-task start-up (acquired -> app code running: measured by
the warm executor for each task; for Flower's executor, a fresh interpreter
importing the ClientApp, which it pays per task before its own steps), and
the load average before and after each run: on a shared machine the figures
move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENGINES = {  # label -> (deploy script directory, extra environment)
    "simulation": ("simulation", {}),
    "flower": ("local", {"EXECUTOR": "flower"}),
    "warm": ("local", {"EXECUTOR": "warm"}),
}
TASK_LINE = re.compile(r"task \d+ completed: (.*)")


def run(engine: str, nodes: int, run_config: str, work: Path, env_extra: dict[str, str]) -> float:
    script = REPO / "deploy" / engine / "run.sh"
    env = {**os.environ, **env_extra, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = work.with_suffix(".log")
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            ["bash", str(script), str(nodes), "-c", run_config],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{engine} run failed (exit {done.returncode}), see {log}")
    return time.monotonic() - started


def rows(results: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (results / "metrics.jsonl").read_text().splitlines()]


def seconds_per_round(curve: list[dict[str, Any]]) -> float:
    """The median wall time of rounds 2..R (row 0 is w_0, row 1 round 1)."""
    return statistics.median(row["seconds"] for row in curve[2:])


def warm_tasks(logs: Path) -> list[dict[str, float]]:
    """Each task's seconds from its acquisition to each step, from the warm executors' logs."""
    return [
        {name: float(value) for name, value, _ in (p.split() for p in match.group(1).split(", "))}
        for log in logs.glob("*.executor.log")
        for match in TASK_LINE.finditer(log.read_text())
    ]


def median_steps(tasks: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds from a task's acquisition to each step, over ``tasks``."""
    names = dict.fromkeys(name for task in tasks for name in task)  # in step order
    return {n: statistics.median(t[n] for t in tasks if n in t) for n in names}


def own_startup(tasks: list[dict[str, float]]) -> float:
    """Median over tasks of the warm executor's own share of the start-up.

    A task's start-up (acquired -> app code running) is forking, pulling the message
    and FAB from the SuperNode, installing and loading; the pull includes waiting for
    the SuperNode to finish receiving the message's arrays from the SuperLink (it
    hands out the task first), which any executor waits for. This is the rest:
    acquired -> forked plus pulled -> app.
    """
    own = [t["forked"] + t["app"] - t["pulled"] for t in tasks]
    return statistics.median(own) if own else float("nan")


def fresh_clientapp_import() -> float:
    """Seconds for a fresh interpreter to import the ClientApp (torch, flwr, the app)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import clients.app"], cwd=REPO, check=True)
    return time.monotonic() - started


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3, help="K (default: 3)")
    parser.add_argument("--rounds", type=int, default=5, help="R (default: 5)")
    parser.add_argument("--tasks", default="mnist-2nn,mnist-cnn")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--run-config", default="fraction-train=1.0 local-epochs=1 batch-size=10")
    parser.add_argument("--port", type=int, default=9540, help="SuperLink ports start here")
    args = parser.parse_args()
    if not os.environ.get("FEDAVG_DATA_DIR"):
        raise SystemExit("set FEDAVG_DATA_DIR to a directory holding mnist/")
    if args.rounds < 2:
        raise SystemExit("--rounds must be at least 2 (round 1 is not timed)")
    tmp = Path(tempfile.mkdtemp(prefix="deploy-latency-"))
    engines = [e for e in args.engines.split(",") if e]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{when}, {os.cpu_count()} CPUs, K={args.nodes}, R={args.rounds}, {args.run_config}; "
          f"work in {tmp}", flush=True)  # fmt: skip
    table: list[dict[str, Any]] = []
    for task in [t for t in args.tasks.split(",") if t]:
        curves: dict[str, list[dict[str, Any]]] = {}
        for engine in engines:
            directory, extra = ENGINES[engine]
            work = tmp / f"{task}-{engine}"
            config = (
                f"task='{task}' {args.run_config} num-server-rounds={args.rounds} "
                f"results-dir='{work / 'results'}' run-name='r'"
            )
            env = {
                **extra,
                "SUPERLINK_PORT": str(args.port + 10 * len(table)),
                "FLWR_HOME": str(work / "flwr_home"),
                "WORK_DIR": str(work),
            }
            before = load()
            wall = run(directory, args.nodes, config, work, env)
            curves[engine] = rows(work / "results" / "r")
            tasks = warm_tasks(work / "logs") if engine == "warm" else []
            steps = median_steps(tasks)
            startup = (
                steps.get("app", float("nan"))
                if engine == "warm"
                else fresh_clientapp_import()
                if engine == "flower"
                else float("nan")
            )
            row = {
                "task": task,
                "engine": engine,
                "s_per_round": seconds_per_round(curves[engine]),
                "startup_s": startup,
                "wall_s": wall,
                "load_before": before,
                "load_after": load(),
                "rounds_s": [round(r["seconds"], 2) for r in curves[engine][1:]],
            }
            if engine == "warm":
                row["warm_steps_s"] = steps
                row["own_startup_s"] = own_startup(tasks)
            table.append(row)
            print(json.dumps(row), flush=True)
        for row in table:  # the curves must be the simulation's (once all engines ran)
            if row["task"] == task and "simulation" in curves:
                row["max_acc_gap"] = max(
                    abs(a["test_accuracy"] - b["test_accuracy"])
                    for a, b in zip(curves["simulation"], curves[row["engine"]], strict=True)
                )

    print("\n| task | engine | s/round (median r2..R) | task start-up s | of which the "
          "executor's own s | max acc gap | load 1/5/15 min |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in table:
        gap = r.get("max_acc_gap", float("nan"))
        own = r.get("own_startup_s", float("nan"))
        print(f"| {r['task']} | {r['engine']} | {r['s_per_round']:.2f} | {r['startup_s']:.2f} | "
              f"{own:.3f} | {gap:.6f} | {r['load_before']} -> {r['load_after']} |")  # fmt: skip
    for task in {r["task"] for r in table}:
        by = {r["engine"]: r["s_per_round"] for r in table if r["task"] == task}
        if "flower" in by and "warm" in by:
            line = f"{task}: Flower's executor / warm = {by['flower'] / by['warm']:.1f}x"
            if "simulation" in by:
                line += f"; warm - simulation = {by['warm'] - by['simulation']:+.2f} s/round"
            print(line)


if __name__ == "__main__":
    main()
