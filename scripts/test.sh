#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the linters and the whole test suite,
# end-to-end simulation on real MNIST included (skipped where the data is
# not at ../shared/data or $FEDAVG_SHARED_DATA).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. "${VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
ruff check .
ruff format --check .
mypy .
python -m pytest -q "$@"
