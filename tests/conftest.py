"""Shared fixtures: the real data set when it is there, synthetic MNIST otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tasks.mnist.idx import write_idx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
# Real data: $FEDAVG_SHARED_DATA, else ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get("FEDAVG_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL_MNIST = SHARED_DATA / "mnist"


def real_mnist_dir() -> Path:
    if not (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {REAL_MNIST} (set FEDAVG_SHARED_DATA)")
    return REAL_MNIST


@pytest.fixture
def real_mnist() -> Path:
    return real_mnist_dir()


def write_synthetic_mnist(
    directory: Path, *, train: int = 600, test: int = 200, seed: int = 0
) -> Path:
    """Learnable fake MNIST: each digit is a bright block at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[i, 4 + 10 * row : 12 + 10 * row, 2 + 5 * col : 6 + 5 * col] = 255
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return directory


@pytest.fixture
def synthetic_mnist(tmp_path: Path) -> Path:
    return write_synthetic_mnist(tmp_path / "mnist")
