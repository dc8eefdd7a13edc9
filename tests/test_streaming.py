"""A round's replies are handed over as they are pulled; the deadline is Flower's."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from server.transport.streaming import ReplyStream, poll_interval_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SlowGrid:
    """Reply to message i becomes available ``delays[i]`` (fake) seconds after the push."""

    def __init__(self, delays: list[float], clock: Clock) -> None:
        self.delays, self.clock, self.pulls = delays, clock, 0
        self.pushed_at = 0.0

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        self.pushed_at = self.clock()
        ids = []
        for i, message in enumerate(messages):
            message.metadata.message_id = f"m{i}"
            ids.append(f"m{i}")
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:
        self.pulls += 1
        elapsed = self.clock() - self.pushed_at
        return [
            SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=m))
            for m in message_ids
            if elapsed >= self.delays[int(m[1:])]
        ]


def messages(n: int) -> list[Any]:
    return [SimpleNamespace(metadata=SimpleNamespace(dst_node_id=100 + i)) for i in range(n)]


def stream(grid: SlowGrid, n: int, timeout: float | None, clock: Clock) -> ReplyStream:
    return ReplyStream(
        grid,  # type: ignore[arg-type]
        messages(n),  # type: ignore[arg-type]
        timeout=timeout,
        interval=0.1,
        clock=clock,
        sleep=clock.sleep,
    )


def test_each_reply_is_handed_over_before_later_ones_are_pulled() -> None:
    clock = Clock()
    grid = SlowGrid([0.0, 0.3, 0.5], clock)
    replies = stream(grid, 3, timeout=10, clock=clock)
    seen = []
    for reply in replies:
        seen.append((reply.metadata.reply_to_message_id, grid.pulls))
    # m0 reaches the consumer after the first pull, long before m2 exists.
    assert seen[0] == ("m0", 1)
    assert [m for m, _ in seen] == ["m0", "m1", "m2"]
    assert seen[2][1] > seen[1][1] > 1
    assert replies.sent == {"m0": 100, "m1": 101, "m2": 102}
    assert 0.5 <= clock.now < 0.7  # stopped polling once all were in


def test_replies_missing_at_the_deadline_are_absent() -> None:
    clock = Clock()
    grid = SlowGrid([0.0, 60.0], clock)
    replies = list(stream(grid, 2, timeout=0.35, clock=clock))
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]
    assert clock.now == 0.35  # waited exactly until the deadline


def test_a_stream_is_read_once() -> None:
    clock = Clock()
    replies = stream(SlowGrid([0.0], clock), 1, timeout=1, clock=clock)
    assert len(list(replies)) == 1
    with pytest.raises(RuntimeError, match="once"):
        iter(replies)


def test_a_folded_reply_is_freed_before_the_next_one_arrives() -> None:
    """Neither the runner's tally nor the strategy keeps a reply once it is folded in."""
    import weakref

    import numpy as np
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    from server.rounds import ReplyTally
    from strategies.fedavg import FederatedAveraging
    from tests.fakes import FakeGrid, set_task_identity

    set_task_identity()
    strategy = FederatedAveraging(fraction_train=1.0, identify_clients=False)
    w_t = ArrayRecord({"w": Array(np.zeros(1000, dtype=np.float32))})
    instructions = list(strategy.configure_train(1, w_t, ConfigRecord(), FakeGrid(5, _unused)))
    for k, instruction in enumerate(instructions):  # as a grid does when it pushes them
        instruction.metadata.__dict__["_message_id"] = f"m{k}"
    folded: list[weakref.ref[Message]] = []

    def replies() -> Iterator[Message]:
        for k in range(5):
            assert all(r() is None for r in folded), f"reply {len(folded)} still held"
            arrays = ArrayRecord({"w": Array(np.full(1000, k, dtype=np.float32))})
            metrics = MetricRecord({"num-examples": 1, "train-loss": 0.0})
            content = RecordDict({"arrays": arrays, "metrics": metrics})
            reply = Message(content, reply_to=instructions[k])
            folded.append(weakref.ref(reply))
            yield reply
            del reply

    tally = ReplyTally(replies())  # type: ignore[arg-type]
    arrays, metrics = strategy.aggregate_train(1, tally)
    assert arrays is not None and tally.replies == 5 and tally.examples == 5
    assert metrics is not None and metrics["clients-rejected"] == 0
    np.testing.assert_allclose(arrays["w"].numpy(), np.full(1000, 2.0))


def _unused(*_: object) -> Any:
    raise AssertionError("configure_train sends nothing")


def test_replies_waiting_in_the_servers_own_process_are_pulled_every_50_ms() -> None:
    from flwr.superlink.grid.http_grid import HttpGrid
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    simulation = InMemoryGrid.__new__(InMemoryGrid)  # the kind, not a running engine
    deployment = HttpGrid.__new__(HttpGrid)
    assert poll_interval_for(simulation, {}) == 0.05
    assert poll_interval_for(deployment, {}) == 0.2  # each pull is a request to the SuperLink
    assert poll_interval_for(simulation, {"FEDAVG_POLL_INTERVAL": "0.5"}) == 0.5
