"""The fault soak (benchmarks/soak.py), reduced to 6 rounds: the figures the README reports.

Through a real SuperLink and Ray, on real MNIST (K=100, 2NN): 30% injected
client failures; the run stopped mid-way and resumed from its checkpoint; the
SuperLink killed with SIGKILL mid-way and the run resumed on a new one. The
kill -9 of a SuperNode on the local federation is in test_e2e_deploy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, real_mnist_dir
from tests.processes import run_stoppable

pytestmark = pytest.mark.e2e
PORT = int(os.environ.get("FEDAVG_E2E_PORT", "9391")) + 10
ROUNDS = 6


def test_soak_failures_stop_and_superlink_kill(tmp_path: Path) -> None:
    data = real_mnist_dir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FEDAVG_DATA_DIR": str(data.parent),
    }
    done = run_stoppable(
        [sys.executable, "-m", "benchmarks.soak", "--rounds", str(ROUNDS), "--port", str(PORT),
         "--scenarios", "failures,serverapp-stop,superlink-kill", "--results", str(tmp_path)],
        cwd=REPO, env=env, timeout=1500,
    )  # fmt: skip
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    outcomes = {
        o["scenario"]: o
        for o in (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))
    }
    assert set(outcomes) == {"failures", "serverapp-stop", "superlink-kill"}, output
    for outcome in outcomes.values():
        assert outcome["status"].startswith("finished:completed"), outcome
        assert outcome["rounds_completed"] == ROUNDS, outcome

    failures = outcomes["failures"]
    assert failures["updates_rejected"] > 0  # 30% of 60 sampled clients fail
    assert failures["accuracy"] > 0.85  # chance is 0.10; a clean run gets ~0.93

    checkpoint_every = 2  # the soak's max(2, rounds // 4)
    for scenario in ("serverapp-stop", "superlink-kill"):
        outcome = outcomes[scenario]
        assert 0 <= outcome["rounds_lost"] < checkpoint_every, outcome
        assert "curve identical to the uninterrupted run" in outcome["note"], outcome
