"""Which partition each connected node holds, so that sampling sees nodes in partition order.

Algorithm 1 samples S_t from the K clients; ``sample_clients`` draws
positions in a sorted list of nodes. Node ids are random and differ between
engines (the simulation engine and a real SuperLink assign their own), so
sorting by node id would give the same positions different clients in each.
Sorting by partition id instead (one QUERY message per newly seen node, once
per run) makes the same seed sample the same clients in simulation and on a
real federation. A node that does not answer is placed after the ranked ones,
by node id, and logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from logging import WARNING

from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid

PARTITION_ID_KEY = "partition-id"
QUERY_GROUP = "partition-id"
METRICS_KEY = "metrics"


def query_partition_ids(grid: Grid, node_ids: Iterable[int], timeout: float) -> dict[int, int]:
    """Ask each node for its partition id; return {node id: partition id} of those that answered."""
    messages = [
        Message(
            RecordDict({"config": ConfigRecord({"query": PARTITION_ID_KEY})}),
            dst_node_id=node_id,
            message_type=MessageType.QUERY,
            group_id=QUERY_GROUP,
        )
        for node_id in node_ids
    ]
    asked = {m.metadata.dst_node_id for m in messages}
    ranks: dict[int, int] = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            log(WARNING, "node %d did not say its partition id: %s", node, reply.error.reason)
            continue
        metrics = reply.content.metric_records.get(METRICS_KEY)
        value = None if metrics is None else metrics.get(PARTITION_ID_KEY)
        if isinstance(value, int) and node in asked:
            ranks[node] = value
        else:
            log(WARNING, "node %d answered the partition query with %r", node, value)
    return ranks


def partition_order(node_ids: Iterable[int], ranks: Mapping[int, int]) -> list[int]:
    """Node ids sorted by partition id; unranked nodes last, by node id."""
    return sorted(
        set(int(n) for n in node_ids),
        key=lambda n: (0, ranks[n], n) if n in ranks else (1, 0, n),
    )
