"""The Grid adapter: weights packed on the wire, replies streamed, named arrays above.

Flower moves every ``Array`` of a record as objects of its own, and on a real
federation each object is a request to the SuperLink; ``protocol.packing``
puts a model's tensors in one ``Array`` (a 2NN message is 6 objects instead of
16). Packing is a transport concern, so it lives here and not in a strategy:
``TransportGrid`` wraps Flower's grid, packs the ArrayRecords of outgoing
messages and unpacks those of replies. Every strategy above it, ours, Flower's
own or a Flower wrapper (whose DP clipping reads replies tensor by tensor),
sends and reads named arrays.

A node gets packed weights only once it has said it reads them: its answer to
the ``query.identify`` message (``protocol.messages``) carries
``accepts-packed = true``. The adapter learns this from identify replies as
they pass through it, so a foreign ClientApp (one that loads
``msg.content["arrays"].to_torch_state_dict()``, with no identify handler)
never sees a packed record.

``stream`` pushes a round's messages and yields each reply as it is pulled,
within the round's deadline (``server.transport.streaming``); the round runner
folds a reply into the average and drops it before the next one arrives.
``send_and_receive`` (what Flower's own ``Strategy.start`` calls) is the same
stream collected into a list, so any strategy gets replies at this adapter's
poll interval rather than Flower's ``HttpGrid``'s 3 s. A round's messages
expire (their TTL) twice the round's timeout after they are made: a SuperLink
then stops delivering them, and a client that gets one late skips it
(``clients.app``) rather than train for a round that has moved on; the second
timeout allows for pushing to a busy SuperLink. Constructing the adapter also
makes the deployment grid retry reply objects sooner
(``server.transport.object_retry``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from logging import WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from protocol.messages import ACCEPTS_PACKED_KEY, IDENTIFY, IDENTITY_KEY
from protocol.packing import PackingError, is_packed, pack, unpack
from server.transport.object_retry import PullHookMoved, retry_unavailable_objects_sooner
from server.transport.streaming import ReplyStream, poll_interval_for
from strategies.records import to_array_record


class TransportGrid(Grid):
    """``inner`` with packed weights for the nodes that accept them, and streamed replies.

    Args:
        inner: Flower's grid (the ServerApp's ``grid``).
        poll_interval: seconds between reply pulls; default by grid kind and
            ``$FEDAVG_POLL_INTERVAL`` (``streaming.poll_interval_for``).
        environ: where ``FEDAVG_POLL_INTERVAL`` is read (default: ``os.environ``).
    """

    def __init__(
        self,
        inner: Grid,
        *,
        poll_interval: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.packing_nodes: set[int] = set()
        self.poll_interval = (
            poll_interval
            if poll_interval is not None
            else poll_interval_for(inner, os.environ if environ is None else environ)
        )
        try:
            retry_unavailable_objects_sooner()
        except PullHookMoved as moved:  # only slower: a pull waits Flower's 1 s again
            log(WARNING, "reply objects are retried at Flower's pace: %s", moved)

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
        return self._pull(message_ids, named=True)

    def stream(
        self, messages: Iterable[Message], *, timeout: float | None, named: bool = True
    ) -> ReplyStream:
        """Push ``messages``; iterate the result for each reply as it is pulled (once).

        ``named=False`` hands packed replies over as they came, for a consumer that
        reads both forms (ours: ``strategies.replies``): unpacking into a named
        ArrayRecord serialises every tensor again, and those model-sized copies per
        reply fragment the server's heap (measured: ``benchmarks.server_memory``).
        """
        return ReplyStream(
            self,
            _expiring(messages, timeout),
            timeout=timeout,
            interval=self.poll_interval,
            pull=lambda ids: self._pull(ids, named=named),
        )

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return list(self.stream(messages, timeout=timeout))

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

    def _pull(self, message_ids: Iterable[str], *, named: bool) -> list[Message]:
        return [
            self._received(reply, named=named) for reply in self.inner.pull_messages(message_ids)
        ]

    def _received(self, reply: Message, *, named: bool = True) -> Message:
        """Learn from identify replies; unpack packed weights into named arrays."""
        if not reply.has_content():
            return reply
        content = reply.content
        if reply.metadata.message_type == IDENTIFY:
            identity = content.get(IDENTITY_KEY)
            if isinstance(identity, ConfigRecord) and identity.get(ACCEPTS_PACKED_KEY) is True:
                self.packing_nodes.add(reply.metadata.src_node_id)
            return reply
        if not named:
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


def _expiring(messages: Iterable[Message], timeout: float | None) -> list[Message]:
    """The messages, none living longer than two round timeouts (see the module)."""
    out = list(messages)
    if timeout is not None:
        for message in out:
            message.metadata.ttl = min(message.metadata.ttl, 2 * timeout)
    return out
