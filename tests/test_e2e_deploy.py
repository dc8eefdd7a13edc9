"""End to end: a real federation on loopback, TLS and SuperNode authentication on.

deploy/local/run.sh starts a SuperLink and 3 SuperNodes, each holding its own
prepared partition of real MNIST (3 of K=100, 600 examples each) and its
ClientApps run by the warm executor (EXECUTOR=flower: Flower's), probes a
SuperNode whose key was never registered (it must be refused), runs 4 rounds
with C=1, kills one SuperNode with SIGKILL while it trains in round 2, and
checks the final status with `flwr ls`; the results the ServerApp wrote are
checked here: the run finishes on the two survivors.
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
SCRIPT = REPO / "deploy" / "local" / "run.sh"
# The SuperLink's port (the SuperNodes' runtime ports follow it); override where several
# checkouts run the suite at once. EXECUTOR (warm, the default, or flower) passes through.
PORT = int(os.environ.get("FEDAVG_E2E_DEPLOY_PORT", "9500"))


def test_local_federation_refuses_an_unknown_node_and_survives_a_killed_one(
    tmp_path: Path,
) -> None:
    data = real_mnist_dir()
    results = tmp_path / "results"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FEDAVG_DATA_DIR": str(data.parent),
        "WORK_DIR": str(tmp_path / "work"),
        "SUPERLINK_PORT": str(PORT),
        "SUPERNODE_PORT": str(PORT + 5),
        "NUM_PARTITIONS": "100",
        "PROBE_UNREGISTERED": "1",
        "KILL_SUPERNODE": "2",
        "KILL_AFTER_ROUND": "1",
    }
    done = run_stoppable(
        [
            "bash",
            str(SCRIPT),
            "3",
            "-c",
            # E=20: a node trains for about a second, so the kill lands mid-training
            f"num-server-rounds=4 fraction-train=1.0 round-timeout=60.0 local-epochs=20 "
            f"results-dir='{results}' run-name='e2e'",
        ],
        env=env,
        timeout=900,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    assert "finished:completed" in done.stdout, output
    assert "unregistered SuperNode refused" in done.stdout, output
    assert "TLS=1, auth=1" in done.stdout
    assert f"executor={os.environ.get('EXECUTOR', 'warm')}" in done.stdout
    assert "killed supernode-002" in done.stdout and "mid-round" in done.stdout, output
    summary = json.loads((results / "e2e" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 4
    assert summary["final_accuracy"] > 0.5  # chance is 0.10
    lines = (results / "e2e" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines][1:]
    assert rows[0]["clients_replied"] == 3 and rows[0]["clients_rejected"] == 0
    # The node dies in the first round after round 1 in which it trains (the killer sees
    # round 1 end through the streamed log, which can lag a short round). Until then all
    # three update the model; from then on only the two survivors: the dead node's reply
    # is missing (round deadline) or is the SuperLink's "Node Unavailable" error.
    valid = [row["clients_replied"] - row["clients_rejected"] for row in rows]
    assert 2 in valid[1:], rows
    killed_in = valid.index(2)
    assert valid[:killed_in] == [3] * killed_in, rows
    for row in rows[killed_in:]:
        assert row["model_updated"]
        assert row["clients_replied"] - row["clients_rejected"] == 2, row
        assert all("Node Unavailable" in reason for reason in row["rejections"]), row
    config = json.loads((results / "e2e" / "config.json").read_text())
    assert config["num_clients"] == 3  # the intruder never joined
