"""The Docker and Kubernetes deployment files, validated statically.

Neither Docker nor a cluster runs here: the compose files go through
`docker-compose config` (Debian's docker-compose; skipped with the reason
when it is missing) and the manifests through kubernetes-validate's bundled
Kubernetes schemas (offline). The checks pin what matters: Flower images at
the app's flwr version, TLS and node authentication in the overlay, one
data directory per node.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import flwr
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "deploy" / "docker"
KUBERNETES = REPO / "deploy" / "kubernetes"
K8S_VERSION = "1.31.0"


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_against_the_schema() -> None:
    kinds = set()
    for name, doc in manifests():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds.add((doc["kind"], doc["metadata"]["name"]))
        assert doc["metadata"].get("namespace", "fedavg") == "fedavg", name
    assert {("Deployment", "superlink"), ("Service", "superlink")} <= kinds
    assert ("StatefulSet", "supernode") in kinds


def test_the_validator_rejects_a_broken_manifest() -> None:
    statefulset = next(d for _, d in manifests() if d["kind"] == "StatefulSet")
    broken = {**statefulset, "spec": {**statefulset["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_supernode_ordinal_selects_partition_and_key_and_flower_is_pinned() -> None:
    docs = dict(((d["kind"], d["metadata"]["name"]), d) for _, d in manifests())
    pod = docs[("StatefulSet", "supernode")]["spec"]["template"]["spec"]
    supernode = next(c for c in pod["containers"] if c["name"] == "supernode")
    script = " ".join(supernode["args"])
    assert "--auth-supernode-private-key=/keys/supernode-${POD_INDEX}" in script
    assert 'client-$(printf %03d "${POD_INDEX}")' in script
    assert "--root-certificates=/certs/ca.crt" in script and "--insecure" not in script
    index = supernode["env"][0]["valueFrom"]["fieldRef"]["fieldPath"]
    assert "apps.kubernetes.io/pod-index" in index
    superlink = docs[("Deployment", "superlink")]["spec"]["template"]["spec"]["containers"][0]
    assert superlink["image"] == f"flwr/superlink:{flwr.__version__}"
    assert supernode["image"] == f"flwr/supernode:{flwr.__version__}"
    assert "--enable-supernode-auth" in superlink["args"]
    assert "--disable-runtime-dependency-installation" in superlink["args"]


def compose_config(*files: str) -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (scripts/setup.sh installs Debian's package)")
    args = [binary]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    done = subprocess.run(
        [*args, "config"], capture_output=True, text=True, check=False, cwd=DOCKER
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_base_runs_pinned_flower_images_with_one_data_dir_per_node() -> None:
    services = compose_config("compose.yml")["services"]
    assert services["superlink"]["image"] == f"flwr/superlink:{flwr.__version__}"
    nodes = sorted(s for s in services if s.startswith("supernode-"))
    assert len(nodes) == 3
    mounts = set()
    for i, node in enumerate(nodes):
        assert services[node]["image"] == f"flwr/supernode:{flwr.__version__}"
        assert "data-path='/data/node'" in services[node]["command"]
        (volume,) = services[f"clientapp-{i}"]["volumes"]
        assert volume.endswith(":/data/node:ro")
        mounts.add(volume)
    assert len(mounts) == 3  # each node sees its own directory only
    assert "--disable-runtime-dependency-installation" in services["superlink"]["command"]


def test_compose_tls_overlay_turns_on_tls_and_node_authentication() -> None:
    services = compose_config("compose.yml", "compose.tls.yml")["services"]
    superlink = services["superlink"]["command"]
    assert "--insecure" not in superlink and "--enable-supernode-auth" in superlink
    assert "/certs/server.pem" in superlink
    assert "--insecure" not in services["serverapp"]["command"]
    for i in range(3):
        command = services[f"supernode-{i}"]["command"]
        assert "--insecure" not in command and "/keys/node.key" in command
        volumes = " ".join(services[f"supernode-{i}"]["volumes"])
        assert f"keys/supernode-{i}:/keys/node.key:ro" in volumes


def test_app_image_builds_on_the_pinned_superexec_with_the_tested_torch() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert f"ARG FLWR_VERSION={flwr.__version__}" in dockerfile
    assert "FROM flwr/superexec:${FLWR_VERSION}" in dockerfile
    torch_pin = next(w for w in setup.split() if w.startswith("torch=="))
    assert torch_pin in dockerfile  # the torch the tests ran with
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1" in dockerfile
