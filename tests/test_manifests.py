"""The Docker and Kubernetes deployment files, validated statically.

Neither Docker nor a cluster runs here: the compose files go through
`docker-compose config` (Debian's docker-compose; skipped with the reason
when it is missing) and the manifests through kubernetes-validate's bundled
Kubernetes schemas (offline). The checks pin what matters: Flower images at
the app's flwr version, TLS and node authentication in the overlay, one
data directory per node.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
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


def compose_config(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (scripts/setup.sh installs Debian's package)")
    args = [binary]
    for name in files:
        args += ["-f", str(DOCKER / name)]
    done = subprocess.run(
        [*args, "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=DOCKER,
        env={**os.environ, **(env or {})},
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
    # the SuperLink gets its three files, never the CA's private key beside them
    mounts = {v.split(":")[1] for v in services["superlink"]["volumes"] if "/certs" in v}
    assert mounts == {"/certs/ca.crt", "/certs/server.pem", "/certs/server.key"}


def test_compose_publishes_the_superlink_on_loopback_at_superlink_port() -> None:
    (port,) = compose_config("compose.yml")["services"]["superlink"]["ports"]
    assert str(port).startswith("127.0.0.1:9092:9092")
    services = compose_config("compose.yml", env={"SUPERLINK_PORT": "9917"})["services"]
    (port,) = services["superlink"]["ports"]
    assert str(port).startswith("127.0.0.1:9917:9092")
    # the containers still dial the SuperLink's own port inside the network
    assert "superlink:9092" in services["supernode-0"]["command"]


def test_app_image_builds_on_the_pinned_superexec_with_the_tested_torch() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert f"ARG FLWR_VERSION={flwr.__version__}" in dockerfile
    assert "FROM flwr/superexec:${FLWR_VERSION}" in dockerfile
    torch_pin = next(w for w in setup.split() if w.startswith("torch=="))
    assert torch_pin in dockerfile  # the torch the tests ran with
    assert "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1" in dockerfile


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_torch_index_is_a_build_arg_defaulting_to_the_cpu_index() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    after_from = dockerfile.split("\nFROM ", 1)[1]  # an ARG before FROM is out of scope after it
    assert f"ARG TORCH_INDEX_URL={CPU_INDEX}" in after_from
    assert '--index-url "${TORCH_INDEX_URL}"' in after_from
    instructions = [ln for ln in dockerfile.splitlines() if not ln.startswith("#")]
    assert not any("download.pytorch.org" in ln for ln in instructions if "ARG" not in ln)
    args = compose_config("compose.yml")["services"]["serverapp"]["build"]["args"]
    assert args["TORCH_INDEX_URL"] == CPU_INDEX
    args = compose_config("compose.yml", env={"TORCH_INDEX_URL": "http://mirror/simple"})
    assert args["services"]["serverapp"]["build"]["args"]["TORCH_INDEX_URL"] == (
        "http://mirror/simple"
    )


def dockerignored(path: str, rules: list[str]) -> bool:
    """Docker's rule for a context path: the last matching pattern decides, `!` re-includes."""
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_nothing_private() -> None:
    rules = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copied = [
        src
        for ln in (DOCKER / "Dockerfile").read_text().splitlines()
        if ln.startswith("COPY ")
        for src in re.sub(r"--\S+", "", ln).split()[1:-1]
    ]
    assert copied and all(not dockerignored(src, rules) for src in copied)
    for private in (
        ".git/config",
        ".venv/bin/python",
        "results/run/summary.json",
        "deploy/docker/certs/ca.key",
        "deploy/docker/keys/supernode-0",
        "deploy/docker/data/nodes/client-000/x",
        "clients/app.py",  # the code arrives as a FAB, not in the image
    ):
        assert dockerignored(private, rules), private


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_prepare_hands_results_certs_and_keys_to_the_image_user(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RESULTS_DIR": str(tmp_path / "results"),
        "CERTS_DIR": str(tmp_path / "certs"),
        "KEYS_DIR": str(tmp_path / "keys"),
    }
    for _ in range(2):  # a second run keeps what the first made
        done = subprocess.run(
            ["bash", str(DOCKER / "prepare.sh"), "--tls"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    keys = [tmp_path / "keys" / f"supernode-{i}" for i in range(3)]
    assert all((k.with_suffix(".pub")).exists() for k in keys)
    results, server_key = tmp_path / "results", tmp_path / "certs" / "server.key"
    ca_key = tmp_path / "certs" / "ca.key"
    if os.geteuid() == 0:  # root hands them over: private modes stay
        for path in (results, server_key, *keys):
            assert path.stat().st_uid == 49999, path
        assert server_key.stat().st_mode & 0o077 == 0
    else:  # otherwise they are opened by mode
        assert results.stat().st_mode & 0o777 == 0o777
        assert all(p.stat().st_mode & 0o004 for p in (server_key, *keys))
    assert ca_key.stat().st_uid == os.geteuid() and ca_key.stat().st_mode & 0o077 == 0


def test_docs_bring_the_federation_up_without_rebuilding() -> None:
    for path in (DOCKER / "README.md", DOCKER / "compose.yml", DOCKER / "compose.tls.yml"):
        text = path.read_text()
        # `up --build` rebuilds, and so needs the torch index, every time
        assert "up --build" not in text and "--build -d" not in text, path
    readme = (DOCKER / "README.md").read_text()
    assert "docker build -f deploy/docker/Dockerfile -t fedavg-superexec:0.1.0 ." in readme
    assert "deploy/docker/prepare.sh --tls" in readme


def test_pods_of_flower_images_can_read_their_secrets_and_write_their_claims() -> None:
    # Flower's images run as uid/gid 49999; kubelet mounts Secrets root-owned, so a key
    # that is not world-readable needs fsGroup 49999, and so does a writable claim.
    for name, doc in manifests():
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        fs_group = pod.get("securityContext", {}).get("fsGroup")
        for volume in pod["volumes"]:
            private = "secret" in volume and volume["secret"].get("defaultMode", 0o644) & 0o4 == 0
            claim = volume.get("persistentVolumeClaim", {})
            writable = bool(claim) and not claim.get("readOnly", False)
            if private or writable:
                assert fs_group == 49999, (name, volume["name"])
