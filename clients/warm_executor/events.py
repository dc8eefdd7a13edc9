"""What a task's forked child reports to the parent, through a pipe of its own.

The child writes one record per step of the task it reaches (a ``!BI``
header: the event and the payload's length, then the pickled payload); the
parent reads them without blocking whenever it looks at its tasks and keeps
each event's payload. They tell the parent how far a task got: its timings,
the FAB directory to warm, and, for a child that died, whether the message
was pulled and not yet answered (then the parent pushes the error reply).
"""

from __future__ import annotations

import contextlib
import enum
import os
import pickle
import struct
from typing import Any


class Event(enum.IntEnum):
    """What a task's child process reports, in order."""

    STARTED = 1  # the child runs (payload: time.time())
    PULLED = 2  # the message is pulled (payload: (time, message proto without content,
    #             the task's run_config, its node_config))
    INSTALLED = 3  # the FAB is installed (payload: (time, FAB hash, app directory))
    LOADED = 4  # the ClientApp is loaded: app code runs next (payload: time)
    REPLIED = 5  # the reply is pushed (payload: time)
    FINISHED = 6  # the task output is pushed (payload: time)


_HEADER = struct.Struct("!BI")


def _write_event(fd: int, event: Event, payload: object) -> None:
    data = pickle.dumps(payload)
    with contextlib.suppress(OSError):
        os.write(fd, _HEADER.pack(int(event), len(data)) + data)


def _parse_events(buffer: bytes) -> tuple[list[tuple[Event, Any]], bytes]:
    events = []
    while len(buffer) >= _HEADER.size:
        kind, size = _HEADER.unpack_from(buffer)
        if len(buffer) < _HEADER.size + size:
            break
        payload = pickle.loads(buffer[_HEADER.size : _HEADER.size + size])
        events.append((Event(kind), payload))
        buffer = buffer[_HEADER.size + size :]
    return events, buffer
