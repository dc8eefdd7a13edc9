"""Seconds per round on one Ray node against two, the same run and seed (issue 23).

Runs the same experiment twice through our SuperLink: on one machine
(``deploy/simulation/run.sh``, Flower's own Ray instance on all of its CPUs), then on a Ray
cluster of two nodes with half the CPUs each, the worker in a network namespace
of its own (``deploy/ray-cluster/netns-worker.sh``; needs root). On one machine the cores are
shared, so this measures what crossing nodes costs, not a speed-up: the same number of
ClientApp actors either way, and every message to the worker's actor goes over the veth link
(Ray's object transfers between raylets). Prints seconds per round (round 1, with the actors'
start-up, apart), the per-message difference, and whether the curves agree.

    python -m benchmarks.ray_cluster --rounds 6 --supernodes 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "deploy" / "ray-cluster"
HEAD_IP, WORKER_IP = "10.231.78.1", "10.231.78.2"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--supernodes", type=int, default=10, help="K; C = 1")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 2, help="this machine's CPUs, split by node"
    )
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--port", type=int, default=9791, help="SuperLink port")
    parser.add_argument("--ray-port", type=int, default=6392)
    return parser.parse_args(argv)


def run(command: list[str], env: dict[str, str], timeout: float = 1200) -> str:
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def rows(results: Path, name: str) -> list[dict[str, Any]]:
    lines = (results / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def describe(name: str, measured: list[dict[str, Any]]) -> dict[str, Any]:
    rounds = measured[1:]
    return {
        "setting": name,
        "round_1_s": round(rounds[0]["seconds"], 2),
        "median_s_after": round(statistics.median(r["seconds"] for r in rounds[1:]), 3),
        "median_clients_s_after": round(
            statistics.median(r["clients_seconds"] for r in rounds[1:]), 3
        ),
        "accuracy": [round(r["test_accuracy"], 4) for r in measured],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ray-cluster-bench-"))
    results = work / "results"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FLWR_HOME": str(work / "flwr_home"),
        "SUPERLINK_PORT": str(args.port),
        "HEAD_IP": HEAD_IP,
        "WORKER_IP": WORKER_IP,
        "RAY_PORT": str(args.ray_port),
    }
    config = (
        f"data-dir='{args.data_dir}' results-dir='{results}' num-server-rounds={args.rounds} "
        "fraction-train=1.0 local-epochs=1 batch-size=10 lr=0.1"
    )
    k = str(args.supernodes)
    # One node first: while a cluster runs on this host, a local ray.init() would join it.
    single_env = {key: value for key, value in env.items() if key != "RAY_ADDRESS"}
    run(
        ["bash", str(REPO / "deploy/simulation/run.sh"), k, "-c", f"{config} run-name='single'"],
        single_env,
    )
    namespace = f"fedavg-bench-{os.getpid()}"
    half = str(max(args.cpus // 2, 1))
    try:
        run(["bash", str(CLUSTER / "netns-worker.sh"), "net", namespace], env)
        run(["bash", str(CLUSTER / "start-head.sh")], {**env, "HEAD_CPUS": half})
        run(
            ["bash", str(CLUSTER / "netns-worker.sh"), "up", namespace],
            {**env, "WORKER_CPUS": half},
        )
        run(
            ["bash", str(CLUSTER / "run.sh"), k, "-c", f"{config} run-name='cluster'"],
            {**env, "MIN_RAY_NODES": "2"},
        )
    finally:
        subprocess.run(["bash", str(CLUSTER / "stop.sh")], check=False, env=env)
        subprocess.run(
            ["bash", str(CLUSTER / "netns-worker.sh"), "down", namespace], check=False, env=env
        )
    single, cluster = (
        describe("one node", rows(results, "single")),
        describe("two nodes", rows(results, "cluster")),
    )
    print(f"K={k}, C=1, E=1, B=10, 2NN, {args.rounds} rounds, {args.cpus} ClientApp CPUs")
    print("| setting | round 1 s | median s/round after | median clients s after | accuracy |")
    print("|---|---|---|---|---|")
    for row in (single, cluster):
        accuracy = ", ".join(f"{a:.4f}" for a in row["accuracy"])
        print(
            f"| {row['setting']} | {row['round_1_s']} | {row['median_s_after']} | "
            f"{row['median_clients_s_after']} | {accuracy} |"
        )
    extra = cluster["median_s_after"] - single["median_s_after"]
    print(f"two nodes cost {extra:+.3f} s/round, {extra / int(k) * 1000:+.1f} ms per message")
    print("same curve:", single["accuracy"] == cluster["accuracy"])


if __name__ == "__main__":
    main()
