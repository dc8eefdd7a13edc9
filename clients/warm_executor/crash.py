"""What the parent makes of a finished task: its timings, and the reply for one that died.

A task that dies (SIGKILL, segfault, out of memory) is noticed by the parent
as soon as it reaps the child, which pushes the reply Flower would give once
the task's heartbeat expires (``ErrorCode.CLIENT_APP_CRASHED``) and marks the
task failed, instead of leaving the round waiting for the expiry. Each task's
steps are logged: seconds from acquiring the task to the fork, the message
pulled, the FAB installed, the ClientApp loaded (app code runs next), the
reply pushed, the task finished.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from . import flwr_internals
from .events import Event

CRASH_REASON = "ClientApp stopped responding."  # Flower's CLIENT_APP_CRASHED_ERROR text


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def task_timings(launched: float, events: dict[Event, Any]) -> dict[str, float]:
    """Seconds from the launch to each step the child reported (cumulative)."""
    marks = {
        "forked": events.get(Event.STARTED),
        "pulled": (events.get(Event.PULLED) or (None,))[0],
        "fab": (events.get(Event.INSTALLED) or (None,))[0],
        "app": events.get(Event.LOADED),
        "replied": events.get(Event.REPLIED),
        "finished": events.get(Event.FINISHED),
    }
    return {name: when - launched for name, when in marks.items() if when is not None}


def report_crash(spec: Any, events: dict[Event, Any], reason: str) -> None:
    """Push Flower's CLIENT_APP_CRASHED reply for a dead task and mark the task failed.

    What the SuperNode itself does once the task's heartbeat expires, without
    the wait. Uses the task's token, as the child would have.
    """
    with flwr_internals.runtime_client(spec) as client:
        if Event.PULLED in events and Event.REPLIED not in events:
            flwr_internals.push_crash_reply(client, events[Event.PULLED][1], reason)
        flwr_internals.push_failed_task_output(client, reason)
