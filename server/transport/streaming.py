"""Send a round's messages and hand back each reply as soon as it is pulled.

Flower's ``Grid.send_and_receive`` returns once every reply is in (or the
timeout has passed), so a server built on it holds all m replies, m models,
before it folds the first one into the average. ``stream_replies`` uses the
Grid's public ``push_messages`` and ``pull_messages`` instead and yields each
reply as it is pulled; the consumer validates it, folds it into the running
n_k-weighted sum and drops it, so the server holds the replies of one poll at
a time, not the round's.

Deadline semantics are Flower's: replies not pulled within ``timeout`` seconds
of the push are absent, without an error. Polling every ``interval`` seconds
(0.2 s on a real federation, 0.05 s in simulation: ``poll_interval_for``) also
collects a deployment's replies sooner than Flower's ``HttpGrid``, which polls
every 3 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from flwr.app import Message
from flwr.serverapp import Grid

DEFAULT_INTERVAL = 0.2
# In simulation the replies not yet pulled wait in the engine's LinkState, in the ServerApp's
# own process: pulling them promptly keeps fewer of them (models) there at once, and a pull
# is a call into memory. On a real federation they wait in the SuperLink and each pull is a
# request to it, so the 0.2 s default stays.
IN_PROCESS_INTERVAL = 0.05
INTERVAL_ENV = "FEDAVG_POLL_INTERVAL"


def poll_interval_for(grid: Grid, environ: Mapping[str, str]) -> float:
    """Seconds between reply pulls on ``grid``: ``$FEDAVG_POLL_INTERVAL``, else by grid kind."""
    if environ.get(INTERVAL_ENV):
        return float(environ[INTERVAL_ENV])
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    return IN_PROCESS_INTERVAL if isinstance(grid, InMemoryGrid) else DEFAULT_INTERVAL


class ReplyStream:
    """Push ``messages`` on first iteration, then yield replies as they are pulled.

    Iterable once. ``sent`` maps each pushed message id to its destination
    node (an error the SuperLink writes for a vanished node comes from the
    SuperLink's own node id, so a reply is attributed through the message it
    answers). ``wait_seconds`` is the time spent pushing, pulling and waiting:
    the clients' share of the round, net of what the consumer did in between.
    """

    def __init__(
        self,
        grid: Grid,
        messages: Iterable[Message],
        *,
        timeout: float | None,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pull: Callable[[list[str]], Iterable[Message]] | None = None,
    ) -> None:
        self._grid = grid
        self._pull = pull or grid.pull_messages
        self._messages = messages
        self._timeout = timeout
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self.sent: dict[str, int] = {}
        self.wait_seconds = 0.0
        self.polls = 0
        self.largest_pull = 0  # replies handed over by one pull: what waited at once
        self._started = False

    def __iter__(self) -> Iterator[Message]:
        if self._started:
            raise RuntimeError("a ReplyStream can be iterated once")
        self._started = True
        return self._replies()

    def _replies(self) -> Iterator[Message]:
        clock = self._clock
        began = clock()
        messages = list(self._messages)
        self._messages = ()
        ids = list(self._grid.push_messages(messages))
        # Grids give each message its id as they push it.
        self.sent = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}
        del messages
        pending = {i for i in ids if i}  # HttpGrid gives None for a message it could not push
        deadline = None if self._timeout is None else began + self._timeout
        waited_since = clock()
        self.wait_seconds += waited_since - began
        while pending:
            pulled = list(self._pull(list(pending)))
            self.polls += 1
            self.largest_pull = max(self.largest_pull, len(pulled))
            for reply in pulled:
                pending.discard(reply.metadata.reply_to_message_id)
            self.wait_seconds += clock() - waited_since
            while pulled:
                yield pulled.pop(0)  # the consumer folds it; nothing here keeps it
            waited_since = clock()
            if not pending:
                break
            now = clock()
            if deadline is not None and now >= deadline:
                break
            pause = self._interval if deadline is None else min(self._interval, deadline - now)
            self._sleep(max(pause, 0.0))
        self.wait_seconds += clock() - waited_since
