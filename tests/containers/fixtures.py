"""Fixtures for the container tests: podman, the Flower and app images, the nodes' data.

Podman as root here needs containers.conf beside this file (runc, cgroupfs, no
default ulimits); docker-compose talks to `podman system service` through
DOCKER_HOST. Where flwr/superlink|supernode|superexec:1.42.0 are not in local
storage (no registry reachable), standin_images.sh builds stand-ins from a
Debian rootfs; where PyTorch's CPU index is unreachable (TORCH_INDEX_URL
unset), wheel_index.py serves torch from what the host's pip can download.
Images are reused by tag between runs: `podman rmi` them to measure a cold
build. Skipped, with the reason, where podman, docker-compose or root is
missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SHARED_DATA, real_mnist_dir

CONTAINERS = REPO / "tests" / "containers"
PORT = int(os.environ.get("FEDAVG_CONTAINERS_PORT", "9900"))
APP_IMAGE = "fedavg-superexec:0.1.0"
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]  # as deploy/docker/Dockerfile
# Fixed, not PORT-relative: the build arg is part of podman's layer cache key, so the
# torch layer is reused whenever the app image is rebuilt for a change in its context.
WHEEL_INDEX_PORT = int(os.environ.get("FEDAVG_WHEEL_INDEX_PORT", "9990"))
WHEELHOUSE = Path(os.environ.get("FEDAVG_WHEELHOUSE", "/var/tmp/fedavg-wheelhouse"))


def say(message: str) -> None:
    print(f"[containers] {message}", file=sys.stderr, flush=True)


def run(args: list[str], env: dict[str, str], timeout: float, **kw: Any) -> str:
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """End a process we started in its own session, with all it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)


def wait_for_superlink(profile: str, env: dict[str, str], timeout: float = 300) -> None:
    """Until the CLI reaches the SuperLink (it takes a while to start on a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            ["flwr", "ls", profile, "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        # exits 0 when it cannot connect too: its JSON says whether it did
        if done.returncode == 0 and json.loads(done.stdout or "{}").get("success", True):
            return
        assert time.monotonic() < deadline, done.stdout[-2000:] + done.stderr[-2000:]
        time.sleep(2)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment for podman and for docker-compose against `podman system service`."""
    for tool in ("podman", "docker-compose"):
        if shutil.which(tool) is None:
            pytest.skip(
                f"{tool} not installed (scripts/setup.sh installs Debian's podman, "
                "debootstrap and docker-compose when run as root)"
            )
    if os.geteuid() != 0:
        pytest.skip("podman runs the federation as root here (rootless is not set up)")
    work = tmp_path_factory.mktemp("podman")
    socket = work / "podman.sock"
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(CONTAINERS / "containers.conf"),
        "DOCKER_HOST": f"unix://{socket}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    log = (work / "service.log").open("w")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            if socket.exists():
                break
            time.sleep(0.2)
        assert socket.exists(), (work / "service.log").read_text()
        yield env
    finally:
        stop_group(service)
        log.close()


def image_exists(name: str, env: dict[str, str]) -> bool:
    done = subprocess.run(["podman", "image", "exists", name], env=env, check=False)
    return done.returncode == 0


def context_digest() -> str:
    """A digest of what the app image is built from: the Dockerfile and the context files."""
    ignore = REPO / ".dockerignore"
    kept = [
        line[1:].strip()
        for line in ignore.read_text().splitlines()
        if line.startswith("!")  # a whitelist: `*`, then the files let in
    ]
    files = []
    for path in [REPO / "deploy" / "docker" / "Dockerfile", ignore, *(REPO / k for k in kept)]:
        if path.is_dir():  # a package (the warm executor): its files, not its bytecode
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
        else:
            files.append(path)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def app_image_current(env: dict[str, str], digest: str) -> bool:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", '{{index .Labels "fedavg.context"}}', APP_IMAGE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == digest


def image_size(name: str, env: dict[str, str]) -> str:
    out = run(["podman", "image", "inspect", "--format", "{{.Size}}", name], env, 60)
    return f"{int(out.strip()) / 1e9:.2f} GB"


@pytest.fixture(scope="module")
def images(podman: dict[str, str]) -> dict[str, str]:
    """Stand-in Flower images where missing, then the app image from our Dockerfile."""
    env = podman
    started = time.monotonic()
    if not all(
        image_exists(f"docker.io/flwr/{n}:1.42.0", env) for n in ("superlink", "supernode")
    ) or not image_exists("docker.io/flwr/superexec:1.42.0", env):
        if shutil.which("debootstrap") is None:
            pytest.skip("no flwr images and no debootstrap to build stand-ins")
    say(run(["bash", str(CONTAINERS / "standin_images.sh")], env, 3600).strip())
    say(f"flwr images ready in {time.monotonic() - started:.0f} s")
    digest = context_digest()
    if not app_image_current(env, digest):  # missing, or built from other files: (re)build
        started = time.monotonic()
        index = None
        torch_index = os.environ.get("TORCH_INDEX_URL")
        if torch_index is None:  # PyTorch's CPU index is unreachable here: serve torch locally
            index_port = WHEEL_INDEX_PORT
            index = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.containers.wheel_index",
                    "--port",
                    str(index_port),
                    "--wheelhouse",
                    str(WHEELHOUSE),
                    *TORCH,
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            assert index.stdout is not None
            assert "serving" in index.stdout.readline(), "the wheel index did not start"
            torch_index = f"http://127.0.0.1:{index_port}/simple"
        try:
            # deploy/docker/README.md's build; --network host: the index is on loopback
            run(
                [
                    "podman",
                    "build",
                    "--network",
                    "host",
                    "-f",
                    "deploy/docker/Dockerfile",
                    "--build-arg",
                    f"TORCH_INDEX_URL={torch_index}",
                    "--label",
                    f"fedavg.context={digest}",
                    "-t",
                    APP_IMAGE,
                    ".",
                ],
                env,
                3600,
                cwd=REPO,
            )
        finally:
            if index is not None:
                stop_group(index)
        say(f"app image built in {time.monotonic() - started:.0f} s")
    say(f"app image {APP_IMAGE}: {image_size(APP_IMAGE, env)}")
    return env


@pytest.fixture(scope="module")
def node_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three of K=100 IID partitions of real MNIST, one directory per SuperNode."""
    real_mnist_dir()
    out = tmp_path_factory.mktemp("nodes")
    run(
        [
            sys.executable,
            "-m",
            "clients.prepare_data",
            "--partition",
            "iid",
            "--num-partitions",
            "100",
            "--clients",
            "3",
            "--data-dir",
            str(SHARED_DATA),
            "--out",
            str(out),
        ],
        dict(os.environ),
        600,
        cwd=REPO,
    )
    return out / "mnist-iid-100"
