#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything the app, its tests
# and its benchmarks need. Installs Python packages into the venv only; it
# installs nothing system-wide unless asked to.
#
#   bash scripts/setup.sh
#   TORCH_INDEX=https://download.pytorch.org/whl/cpu bash scripts/setup.sh   # CPU-only torch
#   INSTALL_DOCKER_COMPOSE=1 bash scripts/setup.sh                           # + apt docker-compose
#
# Environment:
#   VENV=path        the environment [.venv]
#   PYTHON=python3   the interpreter that creates it [python3]
#   TORCH_INDEX=url  the package index torch and torchvision come from [pip's default, PyPI,
#                    whose Linux x86_64 torch is the CUDA build, ~6 GB in the venv]; the
#                    PyTorch CPU index above gives the CPU-only build of the same release
#   INSTALL_DOCKER_COMPOSE=1
#                    also install Debian's docker-compose with apt-get (root only) for the
#                    compose-file checks of tests/test_manifests.py, which are skipped
#                    without it [0]
#   INSTALL_PODMAN=1 also install Debian's podman, runc, debootstrap and catatonit with apt-get (root
#                    only) for the container end-to-end tests (tests/test_e2e_containers.py,
#                    tests/test_e2e_kubernetes.py; they need docker-compose too), which are
#                    skipped without them [0]
#   DRY_RUN=1        print the install commands instead of running them
#
# torch is pinned to the release this project is tested with and installed
# first, by pip, so that nothing (uv, Flower's runtime dependency
# installation) pulls another torch build later.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi; }
torch_index=()
[ -z "${TORCH_INDEX:-}" ] || torch_index=(--index-url "$TORCH_INDEX")

[ -x "$venv/bin/python" ] || run "$python" -m venv "$venv"
[ "${DRY_RUN:-0}" = 1 ] || . "$venv/bin/activate"
run python -m pip install -q --upgrade pip
run python -m pip install -q "${torch_index[@]}" torch==2.14.1 torchvision==0.29.1
run python -m pip install -q -e ".[dev]"
if [ "${INSTALL_DOCKER_COMPOSE:-0}" = 1 ]; then
    # Deployment tooling: tests/test_manifests.py validates the compose files with it.
    if command -v docker-compose >/dev/null; then
        :
    elif ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
        echo "warning: INSTALL_DOCKER_COMPOSE=1 needs apt-get and root; skipped" >&2
    else
        echo "installing Debian's docker-compose with apt-get (INSTALL_DOCKER_COMPOSE=1)" >&2
        run apt-get install -y -q docker-compose >/dev/null 2>&1 ||
            { run apt-get update -q >/dev/null 2>&1 && run apt-get install -y -q docker-compose >/dev/null 2>&1; } ||
            echo "warning: could not install docker-compose; its tests will be skipped" >&2
    fi
elif ! command -v docker-compose >/dev/null; then
    echo "note: no docker-compose; the compose-file checks will be skipped" \
        "(INSTALL_DOCKER_COMPOSE=1 installs it with apt-get, as root)" >&2
fi
if [ "${INSTALL_PODMAN:-0}" = 1 ]; then
    missing=()
    # catatonit: `podman kube play` builds its pod's pause image with it (a Recommends of
    # podman, so not there where apt skips recommended packages).
    for tool in podman runc debootstrap catatonit; do # runc and debootstrap live in /usr/sbin
        command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        :
    elif ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
        echo "warning: INSTALL_PODMAN=1 needs apt-get and root; skipped" >&2
    else
        echo "installing Debian's ${missing[*]} with apt-get (INSTALL_PODMAN=1)" >&2
        run apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
            { run apt-get update -q >/dev/null 2>&1 && run apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
            echo "warning: could not install ${missing[*]}; the container tests will be skipped" >&2
    fi
fi
[ "${DRY_RUN:-0}" = 1 ] ||
    python -c "import flwr, torch; print(f'ready: flwr {flwr.__version__}, torch {torch.__version__} in $venv')"
