"""End to end: the Kubernetes manifests, played by podman on this machine.

No Kubernetes API server or kubelet is to be had here (Debian carries none,
and no registry is reachable for kind/k3s images), so the manifests in
deploy/kubernetes run through `podman kube play`, which plays Pods,
Deployments and claims; tests/containers/kube_play.py stands in, in the open,
for what it lacks (StatefulSet ordinals, Secret volumes, the Service's name,
port-forward, fsGroup). Then what deploy/kubernetes/README.md does: TLS
material with the Service's names in the SAN, one key per SuperNode ordinal,
`flwr supernode register` for each, and a short run whose status
(`flwr ls --run-id`) and summary.json are checked: the SuperLink, 3 SuperNode
pods (SuperNode + ClientApp SuperExec each) and the ServerApp SuperExec all
took part. Skips as tests/test_e2e_containers.py does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SHARED_DATA
from tests.containers import kube_play
from tests.containers.fixtures import (
    PORT,
    images,
    node_data,
    podman,
    run,
    say,
    wait_for_superlink,
)

__all__ = ["images", "node_data", "podman"]  # module fixtures
pytestmark = pytest.mark.e2e
KUBERNETES = REPO / "deploy" / "kubernetes"
HOST_PORT = PORT + 1  # kubectl port-forward svc/superlink <HOST_PORT>:9092
ROUNDS = 2
RUN_TIMEOUT = float(os.environ.get("FEDAVG_CONTAINERS_RUN_TIMEOUT", "2400"))
# `podman kube play` builds each pod's pause image around catatonit.
CATATONIT = ("catatonit", "/usr/libexec/podman/catatonit")


def test_manifests_run_a_federation_under_podman_kube_play(
    images: dict[str, str], node_data: Path, tmp_path: Path
) -> None:
    if not any(shutil.which(c) or Path(c).is_file() for c in CATATONIT):
        pytest.skip("catatonit not installed (INSTALL_PODMAN=1 scripts/setup.sh installs it)")
    env = {**images, "FLWR_HOME": str(tmp_path / "flwr_home")}
    certs, keys, results = tmp_path / "certs", tmp_path / "keys", tmp_path / "results"
    # deploy/kubernetes/README.md: TLS for the Service's names, one key per ordinal
    san = "DNS:superlink,DNS:superlink.fedavg.svc,DNS:localhost,IP:127.0.0.1"
    run(["bash", str(REPO / "deploy" / "local" / "certs.sh"), str(certs), san], env, 120)
    keys.mkdir()
    for i in range(3):
        key = str(keys / f"supernode-{i}")
        run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", key], env, 60)
    results.mkdir()
    # the Secrets' contents: superlink-tls (never ca.key), supernode-keys (private keys only)
    secrets = {"superlink-tls": tmp_path / "secret-tls", "supernode-keys": tmp_path / "secret-keys"}
    for secret, files in (
        ("superlink-tls", [certs / n for n in ("ca.crt", "server.pem", "server.key")]),
        ("supernode-keys", [keys / f"supernode-{i}" for i in range(3)]),
    ):
        secrets[secret].mkdir()
        for path in files:
            (secrets[secret] / path.name).write_bytes(path.read_bytes())
    claims = {
        "fedavg-node-data": node_data,
        "fedavg-central-data": SHARED_DATA,
        "fedavg-results": results,
    }
    pods = kube_play.pods(
        KUBERNETES, tmp_path / "kube", secrets, claims, published={"superlink": HOST_PORT}
    )
    assert sorted(p["metadata"]["name"] for p in pods) == [
        "serverapp",
        "superlink",
        "supernode-0",
        "supernode-1",
        "supernode-2",
    ]
    kube = tmp_path / "kube.yaml"
    kube.write_text(yaml.safe_dump_all(pods))
    network = f"fedavg-k8s-{PORT}"
    subprocess.run(
        ["podman", "network", "rm", "-f", network], env=env, capture_output=True, check=False
    )
    run(["podman", "network", "create", network], env, 60)
    Path(env["FLWR_HOME"]).mkdir()
    (Path(env["FLWR_HOME"]) / "config.toml").write_text(
        '[superlink]\ndefault = "k8s"\n\n[superlink.k8s]\n'
        f'address = "127.0.0.1:{HOST_PORT}"\nroot-certificates = "{certs / "ca.crt"}"\n'
    )
    started = time.monotonic()
    try:
        run(["podman", "kube", "play", "--network", network, str(kube)], env, 600)
        ps = run(["podman", "ps", "--format", "{{.Names}} {{.Status}}"], env, 60)
        say("kube play started:\n" + ps)
        wait_for_superlink("k8s", env)
        for i in range(3):
            pub = str(keys / f"supernode-{i}.pub")
            run(["flwr", "supernode", "register", pub, "k8s"], env, 120, cwd=REPO)
        config = (
            f"num-server-rounds={ROUNDS} fraction-train=1.0 min-nodes=3 "
            "run-name='k8s' wandb.mode='disabled'"
        )
        output = run(
            ["flwr", "run", ".", "k8s", "--stream", "-c", config], env, RUN_TIMEOUT, cwd=REPO
        )
        ids = re.findall(r"Successfully started run (\d+)", output)
        assert ids, output[-3000:]
        listing = run(["flwr", "ls", "k8s", "--run-id", ids[0], "--format", "json"], env, 120)
        (row,) = json.loads(listing)["runs"]
        say(f"k8s: kube play -> {ROUNDS} rounds done {time.monotonic() - started:.0f} s")
        assert row["status"] == "finished:completed", output[-3000:]
        summary = json.loads((results / "k8s" / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["rounds_completed"] == ROUNDS
        assert summary["final_accuracy"] > 0.5
        lines = (results / "k8s" / "metrics.jsonl").read_text().splitlines()
        assert all(json.loads(line)["clients_replied"] == 3 for line in lines[1:])
        say(f"k8s final accuracy {summary['final_accuracy']:.4f}")
    finally:
        logs = subprocess.run(
            ["podman", "pod", "logs", "--tail", "30", "supernode-0"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        (tmp_path / "supernode-0.log").write_text(logs.stdout + logs.stderr)
        subprocess.run(
            ["podman", "kube", "down", str(kube)], env=env, capture_output=True, check=False
        )
        subprocess.run(
            ["podman", "network", "rm", "-f", network], env=env, capture_output=True, check=False
        )
