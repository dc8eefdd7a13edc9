"""Where MNIST comes from: a local directory of IDX files, or the Hugging Face hub.

Resolution order: run config ``data-dir`` if set, then the environment
variable ``FEDAVG_DATA_DIR``, then the hub (``ylecun/mnist``), which is what a
user with internet gets by default. A directory may hold the four IDX files
(gzipped or not) directly or in a ``mnist/`` subdirectory. With no directory
and no reachable hub, loading fails within seconds with a message that says
how to point at local files.

The arrays are loaded once per process and cached: simulation actors reuse
them across rounds.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tasks.mnist.idx import read_idx

DATA_DIR_ENV = "FEDAVG_DATA_DIR"
HUB_DATASET = "ylecun/mnist"
HUB_HOST = "huggingface.co"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataUnavailableError(RuntimeError):
    """No configured directory holds the data and the hub cannot be reached."""


@dataclass(frozen=True)
class MnistArrays:
    """The MNIST training and test sets as uint8 images and int64 labels."""

    train_images: NDArray[np.uint8]
    train_labels: NDArray[np.int64]
    test_images: NDArray[np.uint8]
    test_labels: NDArray[np.int64]
    source: str


def _find_file(directory: Path, stem: str) -> Path | None:
    for folder in (directory, directory / "mnist"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_directory(directory: Path) -> MnistArrays:
    """Load the four IDX files from ``directory`` (or its ``mnist/``)."""
    paths: dict[str, Path] = {}
    for key, stem in FILES.items():
        found = _find_file(directory, stem)
        if found is None:
            raise DataUnavailableError(
                f"{directory}: no {stem}[.gz] there or in {directory / 'mnist'}"
            )
        paths[key] = found
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataUnavailableError(
                f"{paths[split + '_images']}: {split} images {images.shape} do not "
                f"match labels {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataUnavailableError(f"{paths[split + '_labels']}: labels outside 0..9")
    return MnistArrays(
        train_images=arrays["train_images"].astype(np.uint8),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.uint8),
        test_labels=arrays["test_labels"].astype(np.int64),
        source=str(directory),
    )


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> str | None:
    """Return why the hub cannot be used, or None when it looks reachable."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return "HF_HUB_OFFLINE is set"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as error:
        return f"{host}:443 is unreachable ({error})"


def load_from_hub(dataset: str = HUB_DATASET) -> MnistArrays:
    """Download MNIST through Hugging Face ``datasets`` (needs internet)."""
    import datasets
    from tqdm import tqdm

    splits = datasets.load_dataset(dataset)
    arrays: dict[str, NDArray[np.generic]] = {}
    for split in ("train", "test"):
        table = splits[split]
        # Decoding 70k PNGs takes a while: show it (sparsely, as it may land in a log).
        images = tqdm(table["image"], desc=f"MNIST {split}: decoding", unit="img", mininterval=2)
        arrays[f"{split}_images"] = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
        arrays[f"{split}_labels"] = np.asarray(table["label"], dtype=np.int64)
    return MnistArrays(
        train_images=arrays["train_images"].astype(np.uint8),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"].astype(np.uint8),
        test_labels=arrays["test_labels"].astype(np.int64),
        source=f"hf://{dataset}",
    )


@functools.lru_cache(maxsize=4)
def load_mnist(data_dir: str = "") -> MnistArrays:
    """Load MNIST from ``data_dir``, ``$FEDAVG_DATA_DIR`` or the hub, in that order."""
    directory = data_dir or os.environ.get(DATA_DIR_ENV, "")
    if directory:
        return load_idx_directory(Path(directory).expanduser())
    reason = hub_reachable()
    if reason is not None:
        raise DataUnavailableError(
            f"MNIST: no local directory configured and the Hugging Face hub cannot be used "
            f"({reason}). Point at the original IDX files (train-images-idx3-ubyte[.gz] and "
            f"the other three) with run config data-dir, e.g. "
            f"`flwr run . -c \"data-dir='/path/to/mnist'\"`, or the environment variable "
            f"{DATA_DIR_ENV} in the SuperLink's / SuperNode's environment."
        )
    return load_from_hub()
