#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything the app, its tests
# and its benchmarks need.   VENV=path  picks the environment (default .venv).
#
# torch is pinned to the release this project is tested with and installed
# first, by pip, so that nothing (uv, Flower's runtime dependency
# installation) pulls another torch build later.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.14.1 torchvision==0.29.1
python -m pip install -q -e ".[dev]"
# Deployment tooling (tests/test_manifests.py validates the compose files with
# it; skipped there when missing). Debian only, and only where we may install.
if ! command -v docker-compose >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -q docker-compose >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker-compose >/dev/null 2>&1; }) ||
        echo "warning: could not install docker-compose; its tests will be skipped" >&2
fi
python -c "import flwr, torch; print(f'ready: flwr {flwr.__version__}, torch {torch.__version__} in $venv')"
