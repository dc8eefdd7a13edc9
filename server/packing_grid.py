"""Weights packed on the wire, named everywhere else: a Grid adapter.

Flower moves every ``Array`` of a record as objects of its own, and on a real
federation each object is a request to the SuperLink; ``protocol.packing``
puts a model's tensors in one ``Array`` (a 2NN message is 6 objects instead of
16). Packing is a transport concern, so it lives here and not in a strategy:
``PackingGrid`` wraps Flower's grid, packs the ArrayRecords of outgoing
messages and unpacks those of replies. Every strategy above it, ours, Flower's
own or a Flower wrapper (whose DP clipping reads replies tensor by tensor),
sends and reads named arrays.

A node gets packed weights only once it has said it reads them: its answer to
the ``query.identify`` message (``protocol.messages``) carries
``accepts-packed = true``. The adapter learns this from identify replies as
they pass through it, so a foreign ClientApp (one that loads
``msg.content["arrays"].to_torch_state_dict()``, with no identify handler)
never sees a packed record.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from protocol.messages import ACCEPTS_PACKED_KEY, IDENTIFY, IDENTITY_KEY
from protocol.packing import PackingError, is_packed, pack, unpack
from strategies.records import to_array_record


class PackingGrid(Grid):
    """``inner`` with packed weights for the nodes that accept them (see the module)."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner
        self.packing_nodes: set[int] = set()

    # ------------------------------------------------------------ delegation

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    # ------------------------------------------------------------- transport

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(self._packed(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._received(reply) for reply in self.inner.pull_messages(message_ids)]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = self.inner.send_and_receive(self._packed(messages), timeout=timeout)
        return [self._received(reply) for reply in replies]

    # --------------------------------------------------------------- helpers

    def _packed(self, messages: Iterable[Message]) -> list[Message]:
        """The messages, their weights packed for nodes that accept it.

        Strategies send one ArrayRecord object to all of a round's clients:
        it is packed once, and every message to a packing node shares it.
        """
        packed: dict[int, ArrayRecord] = {}
        out = list(messages)
        for message in out:
            if message.metadata.dst_node_id not in self.packing_nodes:
                continue
            if not message.has_content():
                continue
            content = message.content
            for name, record in list(content.items()):
                if isinstance(record, ArrayRecord) and not is_packed(record):
                    if id(record) not in packed:
                        packed[id(record)] = pack(unpack(record))
                    content[name] = packed[id(record)]
        return out

    def _received(self, reply: Message) -> Message:
        """Learn from identify replies; unpack packed weights into named arrays."""
        if not reply.has_content():
            return reply
        content = reply.content
        if reply.metadata.message_type == IDENTIFY:
            identity = content.get(IDENTITY_KEY)
            if isinstance(identity, ConfigRecord) and identity.get(ACCEPTS_PACKED_KEY) is True:
                self.packing_nodes.add(reply.metadata.src_node_id)
            return reply
        for name, record in list(content.items()):
            if isinstance(record, ArrayRecord) and is_packed(record):
                try:
                    content[name] = to_array_record(unpack(record))
                except PackingError:
                    # Left as it came: the strategy rejects it with the reason
                    # (strategies.replies unpacks, and so names the problem).
                    continue
        return reply
