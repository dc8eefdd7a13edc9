"""A node's own data directory: what a deployed SuperNode's ``data-path`` points at.

In a real federation each node holds its partition and nothing else. A
directory written by ``python -m clients.prepare_data`` holds:

- ``data.npz``: the client's raw arrays (``NodeDataTask.client_arrays``);
- ``manifest.json``: the data set, the partition scheme and seed, K and the
  partition id, the example counts and the SHA-256 of ``data.npz``.

``load_node_data`` checks the manifest against the run config (the same data
set, partition scheme and partition seed) and the checksum, and fails with an
error naming the path otherwise: a node with the wrong or a damaged partition
must not train silently on it. The server rejects and counts its reply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocol.config import ExperimentConfig
from tasks.base import ClientData, NodeDataTask
from tasks.registry import get_task

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "data.npz"


class NodeDataError(RuntimeError):
    """A data-path that is missing, damaged or holds data for another run config."""


@dataclass(frozen=True)
class Manifest:
    """What a node's data directory holds."""

    dataset: str
    partition: str
    partition_seed: int
    num_partitions: int
    partition_id: int
    num_train: int
    num_test: int
    sha256: str
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {key.replace("_", "-"): value for key, value in self.__dict__.items()}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Manifest:
        return cls(**{key.replace("-", "_"): value for key, value in values.items()})


def node_task(config: ExperimentConfig) -> NodeDataTask:
    """The run's task, which must support node-local data."""
    task = get_task(config.task)
    if not isinstance(task, NodeDataTask):
        raise NodeDataError(f"task {config.task!r} does not support node-local data (data-path)")
    return task


def partition_dir(root: Path, dataset: str, partition: str, num_partitions: int, pid: int) -> Path:
    """``<root>/<dataset>-<partition>-<K>/client-<i>``: one directory per client."""
    width = max(3, len(str(num_partitions - 1)))
    return root / f"{dataset}-{partition}-{num_partitions}" / f"client-{pid:0{width}d}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_node_data(
    directory: Path, config: ExperimentConfig, partition_id: int, num_partitions: int
) -> Manifest:
    """Write client ``partition_id``'s data and manifest into ``directory``."""
    task = node_task(config)
    arrays = task.client_arrays(config, partition_id, num_partitions)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / ARRAYS, **arrays)  # type: ignore[arg-type]
    manifest = Manifest(
        dataset=task.dataset,
        partition=config.partition,
        partition_seed=config.seeds["partition"],
        num_partitions=num_partitions,
        partition_id=partition_id,
        num_train=len(arrays["train_labels"]),
        num_test=len(arrays["test_labels"]),
        sha256=_sha256(directory / ARRAYS),
    )
    (directory / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


def read_manifest(path: str | Path) -> Manifest:
    """Read and check a data directory's manifest (not the arrays)."""
    directory = Path(path)
    try:
        return Manifest.from_json(json.loads((directory / MANIFEST).read_text()))
    except FileNotFoundError:
        raise NodeDataError(f"data-path {directory}: no {MANIFEST} (not prepared?)") from None
    except (OSError, ValueError, TypeError) as error:
        raise NodeDataError(f"data-path {directory}: unreadable {MANIFEST}: {error}") from None


def load_node_data(path: str | Path, config: ExperimentConfig) -> tuple[ClientData, Manifest]:
    """Load a node's data, after checking it fits the run config and is intact."""
    directory = Path(path)
    manifest = read_manifest(directory)
    task = node_task(config)
    wanted = (task.dataset, config.partition, config.seeds["partition"])
    held = (manifest.dataset, manifest.partition, manifest.partition_seed)
    if held != wanted:
        raise NodeDataError(
            f"data-path {directory} holds (dataset, partition, partition seed) = {held}, "
            f"the run needs {wanted}: prepare it with the run's task, partition and seed"
        )
    arrays_file = directory / ARRAYS
    try:
        if _sha256(arrays_file) != manifest.sha256:
            raise NodeDataError(f"data-path {directory}: {ARRAYS} does not match its checksum")
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        data = task.client_data_from_arrays(arrays, config)
    except NodeDataError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise NodeDataError(f"data-path {directory}: unreadable {ARRAYS}: {error}") from None
    if (len(data.train), len(data.test)) != (manifest.num_train, manifest.num_test):
        raise NodeDataError(
            f"data-path {directory}: {len(data.train)}/{len(data.test)} examples, "
            f"the manifest says {manifest.num_train}/{manifest.num_test}"
        )
    return data, manifest
