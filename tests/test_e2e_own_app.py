"""End to end: a user's own quickstart-style app with our strategy under Flower's DP wrapper.

``tests/apps/quickstart_dp``: its own model and ClientApp (``to_torch_state_dict()``,
``train_loss``, config ``lr``, no identify handler), and a ServerApp that puts
``FederatedAveraging`` inside ``DifferentialPrivacyServerSideFixedClipping`` and starts the
wrapper with its own ``start``. Run in simulation through a real SuperLink and Ray.
"""

from __future__ import annotations

import json
import os
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.processes import run_stoppable

pytestmark = pytest.mark.e2e
APP = REPO / "tests" / "apps" / "quickstart_dp"
PORT = int(os.environ.get("FEDAVG_E2E_PORT", "9391")) + 7


def test_a_users_own_app_trains_under_dp_clipping(tmp_path: Path) -> None:
    results = tmp_path / "result.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FLWR_HOME": str(tmp_path / "flwr_home"),
        "SUPERLINK_PORT": str(PORT),
        "FEDAVG_APP": str(APP),
    }
    done = run_stoppable(
        [
            "bash",
            str(REPO / "deploy" / "simulation" / "run.sh"),
            "2",
            "-c",
            f"results-file='{results}' num-server-rounds=4 lr=0.3 clipping-norm=1.0",
        ],
        env=env,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "finished:completed" in done.stdout
    written = json.loads(results.read_text())
    losses = [written["central_loss"][str(r)] for r in range(5)]
    assert written["nodes"] == 2
    # It learns: the central loss falls round after round (w_0 = 0, target norm ~3.8).
    assert all(b < a for a, b in pairwise(losses)), losses
    assert losses[-1] < 0.5 * losses[0], losses
