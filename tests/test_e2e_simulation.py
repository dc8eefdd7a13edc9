"""End to end: `flwr run` through a real SuperLink and Ray, on real MNIST.

The run's final status is read back with `flwr ls` by the script (the exit
code of `flwr run --stream` is 0 even when the ServerApp crashed), and the
results the ServerApp wrote are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.wandb_offline import read_offline_run
from tests.conftest import REPO, real_mnist_dir
from tests.processes import run_stoppable

pytestmark = pytest.mark.e2e
SCRIPT = REPO / "deploy" / "simulation" / "run.sh"
# Two SuperLink ports from here on; override where several checkouts run the suite at once.
PORT = int(os.environ.get("FEDAVG_E2E_PORT", "9391"))


def run_script(tmp_path: Path, port: int, run_config: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FLWR_HOME": str(tmp_path / "flwr_home"),
        "SUPERLINK_PORT": str(port),
    }
    return run_stoppable(
        ["bash", str(SCRIPT), "20", "-c", run_config],
        env=env,
        timeout=600,
    )


def test_simulation_on_real_mnist_completes_and_learns(tmp_path: Path) -> None:
    data = real_mnist_dir()
    results = tmp_path / "results"
    done = run_script(
        tmp_path,
        PORT,
        f"data-dir='{data}' results-dir='{results}' run-name='e2e' num-server-rounds=3 "
        "fraction-train=0.1 local-epochs=1 batch-size=10 lr=0.1 wandb.mode='offline'",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "finished:completed" in done.stdout
    summary = json.loads((results / "e2e" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 3
    assert summary["final_accuracy"] > 0.85  # chance is 0.10
    config = json.loads((results / "e2e" / "config.json").read_text())
    assert config["num_clients"] == 20
    assert (results / "e2e" / "accuracy.png").is_file()
    [wandb_run] = (results / "e2e" / "wandb").glob("offline-run-*")
    logged = read_offline_run(wandb_run)
    assert [h["_step"] for h in logged.history] == [0, 1, 2, 3]
    assert logged.summary["final_accuracy"] == summary["final_accuracy"]
    assert "[round    3/3] acc" in done.stdout  # the progress line reaches `flwr log --stream`


def test_a_crashed_serverapp_fails_the_script(tmp_path: Path) -> None:
    done = run_script(
        tmp_path, PORT + 1, f"data-dir='{tmp_path / 'no-such-dir'}' num-server-rounds=1"
    )
    assert done.returncode != 0
    assert "finished:failed" in done.stdout
