"""Where a node's data comes from, per ``node_config``.

In simulation Flower sets ``partition-id`` and ``num-partitions`` on each
node; a deployed SuperNode is started with the same keys
(``--node-config "partition-id=3 num-partitions=100"``). The data is loaded
and partitioned once per process and cached.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from server.config import ExperimentConfig
from tasks.base import ClientData
from tasks.registry import get_task


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
