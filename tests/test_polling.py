"""The deployment grid's reply polling: every reply collected, the timeout kept."""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from server.polling import send_and_receive


class SlowGrid:
    """Replies to message i become available ``delays[i]`` seconds after the push."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = delays
        self.pulls = 0

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        self.pushed = time.monotonic()
        return [f"m{i}" for i, _ in enumerate(messages)]

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:
        self.pulls += 1
        now = time.monotonic() - self.pushed
        return [
            SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=m))
            for m in message_ids
            if now >= self.delays[int(m[1:])]
        ]


def test_all_replies_are_collected_soon_after_the_last_arrives() -> None:
    grid = SlowGrid([0.0, 0.3, 0.5])
    started = time.monotonic()
    replies = send_and_receive(grid, [1, 2, 3], timeout=10, interval=0.05)  # type: ignore[arg-type, list-item]
    elapsed = time.monotonic() - started
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    assert 0.5 <= elapsed < 1.5  # Flower's grid would wait for its next 3 s poll


def test_replies_missing_at_the_timeout_are_absent() -> None:
    grid = SlowGrid([0.0, 60.0])
    started = time.monotonic()
    replies = send_and_receive(grid, [1, 2], timeout=0.3, interval=0.05)  # type: ignore[arg-type, list-item]
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]
    assert time.monotonic() - started < 2
