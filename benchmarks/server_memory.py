"""Peak memory of the process that runs the ServerApp, in real runs through a SuperLink.

    python -m benchmarks.server_memory [--sizes 10,100,500] [--port 9691] [--rounds 1]

For each m, starts a SuperLink of its own (simulation runtime, as
``deploy/simulation/run.sh``: ``flower-superlink --simulation`` and
``flwr run``) with K = m SuperNodes and runs the ServerApp on the
benchmark-only ``bench-wide`` task (a 50.9 MB MLP, ``tasks.bench``) with
C = 1, so m = K clients are sampled per round. Clients run the real ClientApp
with ``--real-clients`` on two synthetic examples each (one SGD step);
by default they are BENCHMARK-ONLY echo clients (``benchmarks/echo_client.py``:
the reply is the received w_t, n_k = 1, no training), run from a copy of the
app whose pyproject names that ClientApp. Either way the server receives,
validates and folds m full-size replies: the model's size, not the training,
is what is measured.

The ServerApp runs in the SuperLink's ``flwr-simulation`` child process
(with the in-memory LinkState that holds undelivered messages and unpulled
replies; Ray's workers are processes of their own). That process is found
among the SuperLink's descendants and its ``VmHWM`` (peak resident set) is
read from ``/proc/<pid>/status`` every 0.2 s until it exits. The figure to
watch is peak(m) - peak(10) in model sizes: a server that holds every reply
before aggregating grows by one model per client.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_BYTES = (784 * 16_000 + 16_000 + 16_000 * 10 + 10) * 4  # tasks.bench.task, float32
MIB = 2**20


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_kib(pid: int) -> dict[str, int] | None:
    """VmHWM (peak resident set), VmRSS and its parts RssAnon / RssFile / RssShmem, in KiB."""
    try:
        lines = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    keys = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
    values = {line.split(":")[0]: int(line.split()[1]) for line in lines if line.startswith(keys)}
    return values if "VmHWM" in values else None


def wait_health(port: int, superlink: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(240):
        done = subprocess.run(
            ["curl", "-sf", f"http://127.0.0.1:{port}/health"], capture_output=True, check=False
        )
        if done.returncode == 0:
            return
        if superlink.poll() is not None:
            raise RuntimeError(f"SuperLink exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)
    raise RuntimeError("SuperLink did not become healthy")


APP_DIRS = ("protocol", "strategies", "clients", "tasks", "server")


def echo_app(work: Path) -> Path:
    """A copy of the app whose ClientApp is ``benchmarks.echo_client`` (benchmark only)."""
    app = work / "echo-app"
    for name in APP_DIRS:
        shutil.copytree(REPO / name, app / name, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "benchmarks").mkdir()
    for name in ("__init__.py", "echo_client.py"):
        shutil.copy(REPO / "benchmarks" / name, app / "benchmarks" / name)
    pyproject = (REPO / "pyproject.toml").read_text()
    for old, new in (
        ('clientapp = "clients.app:app"', 'clientapp = "benchmarks.echo_client:app"'),
        ("fab-include = [", 'fab-include = ["benchmarks/*.py", '),
        ('readme = "README.md"\n', ""),
    ):
        if old not in pyproject:
            raise RuntimeError(f"pyproject.toml has no {old!r}")
        pyproject = pyproject.replace(old, new, 1)
    # The echo clients' stand-in for ClientUpdate's time (run config bench.client-seconds).
    pyproject += "\n[tool.flwr.app.config.bench]\nclient-seconds = 0.0\n"
    (app / "pyproject.toml").write_text(pyproject)
    return app


def run_once(
    m: int, port: int, rounds: int, work: Path, app: Path, *, client_seconds: float
) -> dict[str, object]:
    """One ``flwr run`` with K = m = C K clients; the ServerApp process's peak RSS."""
    home = work / f"flwr_home_{m}"
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "sim"\n\n[superlink.sim]\naddress = "127.0.0.1:{port}"\n'
        "insecure = true\n"
    )
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "WANDB_MODE": "disabled",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    log = home / "superlink.log"
    with log.open("wb") as out:
        superlink = subprocess.Popen(
            [
                "flower-superlink",
                "--insecure",
                "--simulation",
                "--disable-runtime-dependency-installation",
                "--database",
                str(home / "state.db"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_health(port, superlink, log)
        run_config = (
            f"task='bench-wide' fraction-train=1.0 num-server-rounds={rounds} local-epochs=1 "
            f"batch-size=0 checkpoint-every=0 results-dir='{work / 'results'}' "
            f"run-name='m{m}' min-nodes={m} wandb.mode='disabled'"
            + (f" bench.client-seconds={client_seconds}" if client_seconds else "")
        )
        started = subprocess.run(
            [
                "flwr",
                "run",
                str(app),
                "sim",
                "--format",
                "json",
                "--federation-config",
                f"num-supernodes={m} client-resources-num-cpus=1",
                "-c",
                run_config,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = json.loads(started.stdout)["run-id"]
        began = time.monotonic()
        server_pid, status = None, ""
        peak: dict[str, int] = {}
        while True:
            if server_pid is None:
                for pid in descendants(superlink.pid):
                    if "flwr-simulation" in cmdline(pid):
                        server_pid = pid
            if server_pid is not None:
                sample = memory_kib(server_pid)
                if sample is None:  # exited
                    break
                for name, kib in sample.items():
                    peak[name] = max(peak.get(name, 0), kib)
            if time.monotonic() - began > 3600:
                raise RuntimeError("run did not finish within an hour")
            time.sleep(0.2)
        for _ in range(60):
            listed = subprocess.run(
                ["flwr", "ls", "sim", "--run-id", str(run_id), "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            try:
                status = json.loads(listed.stdout)["runs"][0]["status"]
            except (ValueError, KeyError, IndexError):
                status = ""
            if status.startswith("finished"):
                break
            time.sleep(1)
        logs = subprocess.run(
            ["flwr", "log", str(run_id), "sim", "--show"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        (home / "serverapp.log").write_text(logs)
        pulls = re.search(r"replies pulled in (\d+) polls, at most (\d+) at once", logs)
        summary = json.loads((work / "results" / f"m{m}" / "summary.json").read_text())
        return {
            "m": m,
            "status": status,
            "server_pid": server_pid,
            "peak_mib": peak.get("VmHWM", 0) / 1024,
            # Sampled every 0.2 s: anonymous memory (Python objects, numpy buffers) apart
            # from shared memory (Ray's object store pages mapped into the process).
            "peak_anon_mib": peak.get("RssAnon", 0) / 1024,
            "peak_shmem_mib": peak.get("RssShmem", 0) / 1024,
            "seconds": time.monotonic() - began,
            "rounds_completed": summary.get("rounds_completed"),
            # Replies waiting at one pull: what the engine produced faster than the server folded.
            "polls": int(pulls.group(1)) if pulls else None,
            "largest_pull": int(pulls.group(2)) if pulls else None,
            "clients_replied": _last_round(work / "results" / f"m{m}").get("clients_replied"),
        }
    finally:
        superlink.terminate()
        try:
            superlink.wait(timeout=30)
        except subprocess.TimeoutExpired:
            superlink.kill()


def _last_round(run_dir: Path) -> dict[str, object]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SUPERLINK_PORT", "9191")))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--real-clients", action="store_true", help="the real ClientApp (one SGD step each)"
    )
    parser.add_argument(
        "--client-seconds",
        type=float,
        default=0.0,
        help="echo clients wait this long before replying (ClientUpdate's stand-in)",
    )
    args = parser.parse_args()
    # Background jobs ignore SIGINT: make SIGTERM unwind too, so SuperLinks are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"host: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    clients = "real ClientApp" if args.real_clients else "echo clients (benchmark only)"
    print(f"model: bench-wide, {MODEL_BYTES / MIB:.1f} MiB float32; rounds: {args.rounds}")
    print(f"clients: {clients}; echo reply after {args.client_seconds} s")
    rows = []
    work = Path(tempfile.mkdtemp(prefix="server-memory-"))
    try:
        app = REPO if args.real_clients else echo_app(work)
        for m in sizes:
            row = run_once(m, args.port, args.rounds, work, app, client_seconds=args.client_seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]["peak_mib"]
    print()
    base_anon = rows[0]["peak_anon_mib"]
    print(
        f"| m | status | replied | VmHWM MiB | VmHWM - at m={sizes[0]}, models "
        f"| peak RssAnon MiB | RssAnon - at m={sizes[0]}, models | peak RssShmem MiB | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        growth = (row["peak_mib"] - base) * MIB / MODEL_BYTES  # type: ignore[operator]
        anon = (row["peak_anon_mib"] - base_anon) * MIB / MODEL_BYTES  # type: ignore[operator]
        print(
            f"| {row['m']} | {row['status']} | {row['clients_replied']} | "
            f"{row['peak_mib']:.0f} | {growth:+.2f} | {row['peak_anon_mib']:.0f} | {anon:+.2f} "
            f"| {row['peak_shmem_mib']:.0f} | {row['seconds']:.0f} |"
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
