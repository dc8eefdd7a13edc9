"""Where a node's data comes from, per ``node_config``.

In simulation Flower sets ``partition-id`` and ``num-partitions`` on each
node. A deployed SuperNode either holds its own data,
``--node-config "data-path='/data/mnist-iid-100/client-003'"`` (a directory
written by ``python -m clients.prepare_data``, see ``clients.node_data``), or
is started with the simulation's keys
(``--node-config "partition-id=3 num-partitions=100"``) and partitions the
whole data set itself. ``data-path`` wins when both are given. The data is
loaded once per process and cached (with the warm executor, once per node:
``clients.app.warm_executor_prepare``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from clients.node_data import ARRAYS, load_node_data, read_manifest
from protocol.config import ExperimentConfig
from tasks.base import ClientData
from tasks.registry import get_task

DATA_PATH_KEY = "data-path"


class NodeConfigError(ValueError):
    """A SuperNode's node_config that does not say which data it holds."""


def partition_of(node_config: Mapping[str, object]) -> tuple[int, int]:
    """Return (partition-id, num-partitions) from a node's config."""
    try:
        partition_id = node_config["partition-id"]
        num_partitions = node_config["num-partitions"]
    except KeyError as missing:
        raise NodeConfigError(
            f"node_config lacks {missing}; start the SuperNode with "
            f'--node-config "partition-id=<i> num-partitions=<K>" (got {dict(node_config)})'
        ) from None
    if not isinstance(partition_id, int) or not isinstance(num_partitions, int):
        raise NodeConfigError(
            "partition-id and num-partitions must be integers, "
            f"got {partition_id!r}, {num_partitions!r}"
        )
    if not 0 <= partition_id < num_partitions:
        raise NodeConfigError(f"partition-id {partition_id} is not in [0, {num_partitions})")
    return partition_id, num_partitions


@functools.lru_cache(maxsize=8)
def load_client_data(
    config: ExperimentConfig, partition_id: int, num_partitions: int
) -> ClientData:
    """Return (and cache) the data of one client."""
    return get_task(config.task).client_data(config, partition_id, num_partitions)


def _data_file_stamp(path: str) -> tuple[int, int, int]:
    """(inode, size, mtime) of a data-path's arrays: a rewritten file is a new cache key."""
    try:
        stat = (Path(path) / ARRAYS).stat()
    except OSError:  # load_node_data names the problem
        return (0, 0, 0)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_node_data(
    path: str, config: ExperimentConfig, stamp: tuple[int, int, int]
) -> tuple[ClientData, int]:
    del stamp  # part of the cache key only
    data, manifest = load_node_data(path, config)
    return data, manifest.partition_id


def node_partition_id(node_config: Mapping[str, object]) -> int:
    """This node's partition id: from its data-path's manifest, else from node_config."""
    path = node_config.get(DATA_PATH_KEY)
    if isinstance(path, str) and path:
        return read_manifest(path).partition_id
    return partition_of(node_config)[0]


def node_client_data(
    config: ExperimentConfig, node_config: Mapping[str, object]
) -> tuple[ClientData, int]:
    """This node's data and partition id, from its data-path or its partition-id."""
    path = node_config.get(DATA_PATH_KEY)
    if path is not None:
        if not isinstance(path, str) or not path:
            raise NodeConfigError(f"{DATA_PATH_KEY} must be a non-empty string, got {path!r}")
        return _load_node_data(path, config, _data_file_stamp(path))
    partition_id, num_partitions = partition_of(node_config)
    return load_client_data(config, partition_id, num_partitions), partition_id
