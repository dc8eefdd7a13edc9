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
python -c "import flwr, torch; print(f'ready: flwr {flwr.__version__}, torch {torch.__version__} in $venv')"
