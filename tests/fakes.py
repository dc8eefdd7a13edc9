"""An in-process Grid for strategy and ServerApp tests: no Ray, no SuperLink."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

Handler = Callable[[Message, Context], Message]


def set_task_identity() -> None:
    """Message construction outside a running ServerApp needs these set."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


class FakeGrid(Grid):
    """Delivers each message to ``handler`` with the destination node's context.

    ``partition-id``/``num-partitions`` are set on each node as in simulation.
    A handler that raises yields an error reply, as Flower does. Pushed
    messages are answered at once (subclasses change what ``send_and_receive``
    answers); ``pull_messages`` hands the replies out.
    """

    def __init__(
        self,
        num_nodes: int,
        handler: Handler,
        run_config: dict[str, Any] | None = None,
        node_ids: list[int] | None = None,
    ) -> None:
        self.node_ids = node_ids or [1000 + i for i in range(num_nodes)]
        self.handler = handler
        self.contexts = {
            node_id: Context(
                run_id=1,
                node_id=node_id,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for i, node_id in enumerate(self.node_ids)
        }
        self.sent: list[Message] = []  # train and evaluate messages
        self.queries: list[Message] = []
        self._replies: dict[str, Message] = {}  # pushed, not yet pulled

    def set_run(self, run: Any) -> None:
        raise NotImplementedError

    @property
    def run(self) -> Any:
        raise NotImplementedError

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver at once (through ``send_and_receive``); replies wait to be pulled."""
        messages = list(messages)
        for reply in self.send_and_receive(messages):
            self._replies[reply.metadata.reply_to_message_id] = reply
        return [m.metadata.message_id for m in messages]

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = []
        for i, message in enumerate(messages):
            message.metadata.__dict__["_message_id"] = f"m{len(self.sent) + len(self.queries)}-{i}"
            is_query = message.metadata.message_type.startswith("query")
            (self.queries if is_query else self.sent).append(message)
            context = self.contexts[message.metadata.dst_node_id]
            try:
                reply = self.handler(message, context)
            except Exception as error:
                reply = Message(
                    Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, repr(error)), reply_to=message
                )
            reply.metadata.__dict__["_src_node_id"] = message.metadata.dst_node_id
            replies.append(reply)
        return replies


def fail_training_round(grid: FakeGrid, server_round: int, error: Exception) -> FakeGrid:
    """Make ``grid`` raise ``error`` when round ``server_round``'s training is sent."""
    deliver = grid.send_and_receive

    def send_and_receive(messages: Iterable[Message], *, timeout: float | None = None) -> Any:
        messages = list(messages)
        first = messages[0] if messages else None
        if (
            first is not None
            and first.metadata.message_type == "train"
            and first.content["config"]["server-round"] == server_round
        ):
            raise error
        return deliver(messages, timeout=timeout)

    grid.send_and_receive = send_and_receive  # type: ignore[method-assign]
    return grid


def run_rounds(
    strategy: Any,
    grid: Grid,
    initial: Any,
    *,
    num_rounds: int,
    first_round: int = 1,
    **runner: Any,
) -> Any:
    """``strategy``'s rounds through the project's round runner over ``grid``: a RunOutcome."""
    from server.rounds import RoundRunner

    return RoundRunner(strategy, grid, **runner).run(
        initial, num_rounds=num_rounds, first_round=first_round
    )
