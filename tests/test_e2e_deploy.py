"""End to end: a real federation on loopback, TLS and SuperNode authentication on.

deploy/local/run.sh starts a SuperLink and 3 SuperNodes, each holding its own
prepared partition of real MNIST (3 of K=100, 600 examples each), probes a
SuperNode whose key was never registered (it must be refused), runs 2 rounds
and checks the final status with `flwr ls`; the results the ServerApp wrote
are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, real_mnist_dir

pytestmark = pytest.mark.e2e
SCRIPT = REPO / "deploy" / "local" / "run.sh"


def test_local_federation_with_tls_and_auth_completes_and_refuses_an_unknown_node(
    tmp_path: Path,
) -> None:
    data = real_mnist_dir()
    results = tmp_path / "results"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FEDAVG_DATA_DIR": str(data.parent),
        "WORK_DIR": str(tmp_path / "work"),
        "SUPERLINK_PORT": "9500",
        "SUPERNODE_PORT": "9505",
        "NUM_PARTITIONS": "100",
        "PROBE_UNREGISTERED": "1",
    }
    done = subprocess.run(
        [
            "bash",
            str(SCRIPT),
            "3",
            "-c",
            f"num-server-rounds=2 fraction-train=1.0 results-dir='{results}' run-name='e2e'",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    assert "finished:completed" in done.stdout, output
    assert "unregistered SuperNode refused" in done.stdout, output
    assert "TLS=1, auth=1" in done.stdout
    summary = json.loads((results / "e2e" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 2
    assert summary["final_accuracy"] > 0.5  # chance is 0.10
    lines = (results / "e2e" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["clients_replied"] for r in rows[1:]] == [3, 3]
    assert all(r["clients_rejected"] == 0 for r in rows)
    config = json.loads((results / "e2e" / "config.json").read_text())
    assert config["num_clients"] == 3  # the intruder never joined
