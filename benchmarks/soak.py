"""Fault soak: failures, stragglers, a killed ServerApp and a killed SuperLink, in simulation.

    FEDAVG_DATA_DIR=/path/to/data python -m benchmarks.soak [--rounds 20] [--scenarios ...]

Each scenario runs the real app through a SuperLink of its own (Ray
simulation, K=100, MNIST 2NN, C=0.1, E=1, B=10) and prints one row: rounds
completed, accuracy reached, updates rejected, rounds lost.

- ``failures``: 30% of the sampled clients fail their round (injected).
- ``stragglers``: 10% of the sampled clients take longer than the round
  deadline (``round-timeout``); the round goes on with those that answered.
- ``serverapp-stop``: the run is stopped (``flwr stop``) mid-run, then resumed
  from its last checkpoint with ``resume-from``; its accuracy curve is
  compared with an uninterrupted run of the same seed.
- ``superlink-kill``: the SuperLink is killed with SIGKILL mid-run (its
  ServerApp and Ray go with it); a new SuperLink resumes from the checkpoint.
- ``supernode-kill``: not a simulation but the local federation
  (``deploy/local/run.sh``: TLS, SuperNode authentication, one process per
  SuperNode, 4 SuperNodes, C=1): one SuperNode is killed with SIGKILL while it
  trains; the run must finish without it.

"rounds lost" counts rounds that were finished before the interruption but
after the last checkpoint, hence done twice.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.paper import config_string
from server.run_check import check_run_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class SuperLink:
    """A simulation SuperLink on ``port`` with its own FLWR_HOME."""

    port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FLWR_HOME": str(self.home),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }

    def start(self) -> None:
        # A SuperLink left over from an earlier run would answer the health check in ours'
        # place (and serve our runs): refuse a port that is taken instead.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as error:
                raise RuntimeError(
                    f"port {self.port} is taken ({error}); a SuperLink left from an earlier "
                    "run? Stop it or pass another --port"
                ) from error
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "soak"\n\n[superlink.soak]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )
        log = (self.home / f"superlink-{time.time_ns()}.log").open("w")
        self.process = subprocess.Popen(
            [str(BIN / "flower-superlink"), "--insecure", "--simulation",
             "--disable-runtime-dependency-installation", "--database",
             str(self.home / "state.db"), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SuperLink on port {self.port} exited at start; see {log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"SuperLink on port {self.port} did not come up")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Stop the SuperLink and everything serving its runs (SuperExec, ServerApp, Ray)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)
        self.process = None
        # SuperExec and the simulation (with its Ray cluster) run in sessions of their own.
        for group in self._serving_process_groups():
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass

    def _serving_process_groups(self) -> set[int]:
        marker = f"127.0.0.1:{self.port}"
        groups = set()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if any(marker.encode() in a for a in argv) and b"--runtime-api-address" in argv:
                    groups.add(os.getpgid(int(proc.name)))
            except (OSError, ProcessLookupError):
                continue
        groups.discard(os.getpgid(0))
        return groups

    def flwr(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "flwr"), *args], env=self.env, capture_output=True, text=True, check=False
        )
        return done.stdout

    def submit(self, run_config: dict[str, Any], num_supernodes: int) -> int:
        pairs = config_string(run_config)
        problem = check_run_config(["-c", pairs])
        if problem is not None:
            raise SystemExit(problem)
        out = self.flwr(
            "run", str(REPO), "soak", "--format", "json", "-c", pairs, "--federation-config",
            f"num-supernodes={num_supernodes} client-resources-num-cpus=1",
        )  # fmt: skip
        reply = json.loads(out)
        if not reply.get("success"):
            raise RuntimeError(f"flwr run failed: {reply}")
        return int(reply["run-id"])

    def status(self, run_id: int) -> str:
        try:
            runs = json.loads(self.flwr("ls", "soak", "--run-id", str(run_id), "--format", "json"))
            return str(runs["runs"][0]["status"])
        except (ValueError, KeyError, IndexError):
            return "unknown"

    def wait(self, run_id: int, timeout: float = 3600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(run_id)
            if status.startswith("finished"):
                return status
            time.sleep(2)
        raise TimeoutError(f"run {run_id} did not finish in {timeout} s")


@contextmanager
def superlink(port: int, home: Path) -> Iterator[SuperLink]:
    link = SuperLink(port, home)
    link.start()
    try:
        yield link
    finally:
        link.kill()


def rows_of(directory: Path) -> list[dict[str, Any]]:
    from server.results import read_metrics

    return read_metrics(directory) if (directory / "metrics.jsonl").is_file() else []


def wait_for_round(directory: Path, server_round: int, timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["round"] >= server_round for r in rows_of(directory)):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{directory} never reached round {server_round}")


def base_config(results: Path, name: str, rounds: int) -> dict[str, Any]:
    return {
        "num-server-rounds": rounds,
        "results-dir": str(results),
        "run-name": name,
        "wandb.mode": "disabled",
    }


def outcome(scenario: str, directory: Path, status: str, lost: int, note: str) -> dict[str, Any]:
    summary = json.loads((directory / "summary.json").read_text())
    return {
        "scenario": scenario,
        "status": status,
        "rounds_completed": summary["rounds_completed"],
        "accuracy": summary["final_accuracy"],
        "updates_rejected": summary["updates_rejected"],
        "rounds_lost": lost,
        "note": note,
    }


def run_failures(link: SuperLink, results: Path, rounds: int, k: int) -> dict[str, Any]:
    config = {**base_config(results, "failures", rounds), "inject-failure-rate": 0.3}
    status = link.wait(link.submit(config, k))
    rows = rows_of(results / "failures")[1:]
    skipped = sum(not r["model_updated"] for r in rows)
    return outcome("failures", results / "failures", status, 0, f"{skipped} rounds skipped")


def run_stragglers(link: SuperLink, results: Path, rounds: int, k: int) -> dict[str, Any]:
    config = {
        **base_config(results, "stragglers", rounds),
        "inject-delay-rate": 0.1,
        # In simulation a straggler holds one of the shared Ray actors for its whole delay,
        # and the messages queued behind it wait: a backlog builds over the first rounds
        # (here rounds 2-4 collect 0-3 replies; with an 8 s deadline, rounds 2-5) and then
        # drains. On a real federation a straggler holds only its own node.
        "inject-delay-seconds": 12.0,
        "round-timeout": 10.0,
    }
    status = link.wait(link.submit(config, k))
    rows = rows_of(results / "stragglers")[1:]
    missing = sum(r["clients_sampled"] - r["clients_replied"] for r in rows)
    slowest = max(r["seconds"] for r in rows)
    return outcome(
        "stragglers", results / "stragglers", status, 0,
        f"{missing} late replies left out; slowest round {slowest:.1f} s",
    )  # fmt: skip


def identical_curves(a: Path, b: Path) -> bool:
    keys = ("round", "test_accuracy", "train_loss")
    return [[r[k] for k in keys] for r in rows_of(a)] == [[r[k] for k in keys] for r in rows_of(b)]


def run_interrupted(
    scenario: str, link: SuperLink, results: Path, rounds: int, k: int
) -> dict[str, Any]:
    every = max(2, rounds // 4)
    kill_after = every + every // 2 + 1
    experiment: dict[str, Any] = {"checkpoint-every": every}
    if scenario == "serverapp-stop":
        # `flwr stop` is a CLI call of seconds; 2NN rounds take under one. Slow clients
        # (timing only: the same math) keep the run going until the stop lands.
        experiment |= {"inject-delay-rate": 1.0, "inject-delay-seconds": 1.0}
    reference = {**base_config(results, f"{scenario}-reference", rounds), **experiment}
    link.wait(link.submit(reference, k))
    config = {**base_config(results, scenario, rounds), **experiment}
    directory = results / scenario
    run_id = link.submit(config, k)
    wait_for_round(directory, kill_after)
    if scenario == "serverapp-stop":
        link.flwr("stop", str(run_id), "soak")
        if link.wait(run_id).startswith("finished:completed"):
            raise RuntimeError(f"{scenario}: the run ended before the stop; use more --rounds")
    else:
        link.kill(signal.SIGKILL)
    rows = rows_of(directory)  # readable after the kill: torn last lines are skipped
    from server.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(directory).round
    lost = max(r["round"] for r in rows) - checkpoint
    if link.process is None:
        link.start()
    status = link.wait(link.submit({**config, "resume-from": str(directory)}, k))
    same = identical_curves(directory, results / f"{scenario}-reference")
    note = f"stopped after round {checkpoint + lost}, resumed from {checkpoint}; " + (
        "curve identical to the uninterrupted run"
        if same
        else "curve DIFFERS from the uninterrupted run"
    )
    return outcome(scenario, directory, status, lost, note)


def run_supernode_kill(results: Path, rounds: int, port: int) -> dict[str, Any]:
    nodes, victim = 4, 1
    config = {
        **base_config(results, "supernode-kill", rounds),
        "fraction-train": 1.0,
        # How long a round waits for the replies of a node that died in it.
        "round-timeout": 60.0,
    }
    work = Path(tempfile.mkdtemp(prefix="fedavg-soak-local-"))
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "WORK_DIR": str(work),
        "SUPERLINK_PORT": str(port),
        "SUPERNODE_PORT": str(port + 10),
        "NUM_PARTITIONS": "100",
        "KILL_SUPERNODE": str(victim),
        "KILL_AFTER_ROUND": str(max(1, rounds // 3)),
    }
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "local" / "run.sh"), str(nodes), "-c",
         config_string(config)],
        env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    (results / "supernode-kill-deploy.log").write_text(done.stdout + done.stderr)
    said = [line for line in done.stdout.splitlines() if line.startswith("[deploy/local]")]
    killed = next((line for line in said if " killed " in line), "")
    status = said[-1].rsplit(": ", 1)[-1] if said else "unknown"
    if done.returncode != 0 or not killed:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    rows = rows_of(results / "supernode-kill")[1:]
    short = [r["round"] for r in rows if r["clients_replied"] - r["clients_rejected"] < nodes]
    available = [r["clients_available"] for r in rows] or ["?"]
    note = (
        f"{killed.split('] ', 1)[-1] or 'NO SuperNode was killed'}; "
        f"rounds averaging fewer than {nodes} updates: {short}; "
        f"nodes available {available[0]} -> {available[-1]}"
    )
    return outcome("supernode-kill", results / "supernode-kill", status, 0, note)


SCENARIOS = ("failures", "stragglers", "serverapp-stop", "superlink-kill", "supernode-kill")


def soak(
    scenarios: list[str], rounds: int, k: int, port: int, results: Path
) -> list[dict[str, Any]]:
    outcomes = []
    home = Path(tempfile.mkdtemp(prefix="fedavg-soak-home-"))
    with superlink(port, home) as link:
        for scenario in scenarios:
            if scenario == "failures":
                outcomes.append(run_failures(link, results, rounds, k))
            elif scenario == "stragglers":
                outcomes.append(run_stragglers(link, results, max(5, rounds // 2), k))
            elif scenario == "supernode-kill":
                outcomes.append(run_supernode_kill(results, rounds, port + 50))
            else:
                outcomes.append(run_interrupted(scenario, link, results, rounds, k))
            print(json.dumps(outcomes[-1]), flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return outcomes


def table(outcomes: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | status | rounds completed | accuracy | updates rejected | rounds lost "
        "| note |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o['scenario']} | {o['status']} | {o['rounds_completed']} | {o['accuracy']:.4f} | "
            f"{o['updates_rejected']} | {o['rounds_lost']} | {o['note']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--num-supernodes", type=int, default=100)
    parser.add_argument("--port", type=int, default=9800)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    # A timeout's SIGTERM unwinds through the context managers: no SuperLink left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = args.results or Path(tempfile.mkdtemp(prefix="fedavg-soak-"))
    outcomes = soak(args.scenarios.split(","), args.rounds, args.num_supernodes, args.port, results)
    print(table(outcomes))
    print(f"results in {results}")


if __name__ == "__main__":
    main()
