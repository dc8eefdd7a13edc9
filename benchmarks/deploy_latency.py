"""The same experiment on the two engines: accuracy curves and wall time per round.

    FEDAVG_DATA_DIR=/path/to/data python -m benchmarks.deploy_latency --nodes 10 --rounds 3

runs ``deploy/simulation/run.sh`` (Ray, ``num-supernodes=K``) and
``deploy/local/run.sh`` (a real SuperLink and K SuperNodes on loopback, TLS
and node authentication, each node holding its own prepared partition) with
the same run config, once more with Flower's 3 s reply polling
(``FEDAVG_POLL_INTERVAL=3``) unless ``--skip-flower-polling``, and prints the
per-round accuracy and seconds of each, the largest accuracy difference, and
the start-up cost of one ClientApp process (what a SuperNode pays per message).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


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


def clientapp_startup() -> float:
    """Seconds for a fresh Python process to import the ClientApp (torch, flwr, the app)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import clients.app"], cwd=REPO, check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10, help="K (default: 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run-config", default="fraction-train=0.3 batch-size=50 local-epochs=1")
    parser.add_argument("--skip-flower-polling", action="store_true")
    parser.add_argument("--port", type=int, default=9540, help="SuperLink ports start here")
    args = parser.parse_args()
    if not os.environ.get("FEDAVG_DATA_DIR"):
        raise SystemExit("set FEDAVG_DATA_DIR to a directory holding mnist/")
    tmp = Path(tempfile.mkdtemp(prefix="deploy-latency-"))
    engines: list[tuple[str, str, dict[str, str]]] = [
        ("simulation", "simulation", {}),
        ("local", "local", {}),
    ]
    if not args.skip_flower_polling:
        engines.append(("local, 3 s polling", "local", {"FEDAVG_POLL_INTERVAL": "3"}))
    curves: dict[str, list[dict[str, Any]]] = {}
    walls: dict[str, float] = {}
    for i, (label, engine, extra) in enumerate(engines):
        work = tmp / f"run{i}"
        config = (
            f"{args.run_config} num-server-rounds={args.rounds} "
            f"results-dir='{work / 'results'}' run-name='r'"
        )
        env = {
            **extra,
            "SUPERLINK_PORT": str(args.port + 10 * i),
            "FLWR_HOME": str(work / "flwr_home"),
            "WORK_DIR": str(work),
        }
        walls[label] = run(engine, args.nodes, config, work, env)
        curves[label] = rows(work / "results" / "r")
        print(f"{label}: {walls[label]:.1f} s wall (log {work.with_suffix('.log')})", flush=True)

    labels = list(curves)
    print("\nround | " + " | ".join(f"{lab} acc, s" for lab in labels))
    for r in range(args.rounds + 1):
        cells = [
            f"{curves[lab][r]['test_accuracy']:.4f}, {curves[lab][r]['seconds']:5.2f}"
            for lab in labels
        ]
        print(f"{r:5d} | " + " | ".join(cells))
    reference = curves["simulation"]
    for lab in labels[1:]:
        pairs = zip(reference, curves[lab], strict=True)
        gap = max(abs(a["test_accuracy"] - b["test_accuracy"]) for a, b in pairs)
        mean_s = sum(row["seconds"] for row in curves[lab][1:]) / args.rounds
        print(f"{lab}: max |accuracy - simulation| = {gap:.6f}, {mean_s:.2f} s/round")
    sim_s = sum(row["seconds"] for row in reference[1:]) / args.rounds
    print(f"simulation: {sim_s:.2f} s/round")
    print(f"one ClientApp process start-up (import clients.app): {clientapp_startup():.2f} s")


if __name__ == "__main__":
    main()
