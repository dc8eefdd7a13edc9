"""Which nodes are there, and which client each one is.

Flower gives SuperNodes random ids in every run, so sampling over node ids
would pick other clients for the same seed in another run or on another
engine. Each node is asked once per run for its client id (its partition);
``ClientDirectory.order`` lists nodes by it, and sampling draws positions in
that order. Flower's own node sampling waits forever for nodes; here waiting
has a timeout.
"""

from __future__ import annotations

import time
from logging import INFO, WARNING

from flwr.app import Message, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid

from protocol.messages import CLIENT_ID_KEY, IDENTIFY, IDENTITY_KEY


class NodeWaitTimeout(RuntimeError):
    """Fewer SuperNodes than required connected within the wait time."""


def wait_for_nodes(grid: Grid, min_nodes: int, wait_seconds: float) -> list[int]:
    """Return the connected node ids once at least ``min_nodes`` are there."""
    deadline = time.monotonic() + wait_seconds
    while True:
        node_ids = list(grid.get_node_ids())
        if len(node_ids) >= min_nodes:
            return node_ids
        if time.monotonic() >= deadline:
            raise NodeWaitTimeout(
                f"only {len(node_ids)} SuperNode(s) connected after "
                f"{wait_seconds:g} s, need min-nodes={min_nodes}"
            )
        log(INFO, "waiting for SuperNodes: %d of %d connected", len(node_ids), min_nodes)
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


class ClientDirectory:
    """Client ids of the nodes, asked once per node (``identify``) or left unknown."""

    def __init__(self, *, identify: bool, timeout: float) -> None:
        self.identify = identify
        self.timeout = timeout
        self._client_ids: dict[int, int | None] = {}

    def order(self, grid: Grid, node_ids: list[int]) -> list[int]:
        """Node ids sorted by client id; nodes without one follow, by node id."""
        unknown = [n for n in node_ids if n not in self._client_ids]
        if unknown and self.identify:
            self._client_ids.update(self._ask(grid, unknown))
        for node in unknown:
            self._client_ids.setdefault(node, None)

        def key(node: int) -> tuple[int, int, int]:
            client = self._client_ids[node]
            return (0, client, node) if client is not None else (1, 0, node)

        return sorted(node_ids, key=key)

    def _ask(self, grid: Grid, node_ids: list[int]) -> dict[int, int | None]:
        messages = [Message(RecordDict(), dst_node_id=n, message_type=IDENTIFY) for n in node_ids]
        replies = grid.send_and_receive(messages, timeout=self.timeout)
        found: dict[int, int | None] = {}
        for reply in replies:
            value = None
            if reply.has_content() and IDENTITY_KEY in reply.content.config_records:
                value = reply.content.config_records[IDENTITY_KEY].get(CLIENT_ID_KEY)
            valid = isinstance(value, int) and not isinstance(value, bool)
            # An error the SuperLink writes comes from its own id and carries no client id.
            found[reply.metadata.src_node_id] = value if valid else None  # type: ignore[assignment]
        missing = len(node_ids) - sum(v is not None for v in found.values())
        if missing:
            log(WARNING, "%d node(s) gave no client id; they are ordered by node id", missing)
        return found
