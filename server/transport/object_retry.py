"""Ask again sooner for reply objects a SuperNode is still pushing.

On a real federation a SuperNode sends a reply in two steps: the message
(registered at the SuperLink at once), then its objects (the arrays, w_k).
A ServerApp that pulls the reply in between is told the objects are
unavailable, and Flower's ``HttpGrid.pull_messages`` retries after 1 s,
doubling (``flwr.supercore.constant.PULL_INITIAL_BACKOFF``). Polling every
0.2 s for replies (``strategies.streaming``), the server often pulls a reply
while its arrays are still being pushed (about 0.3-0.6 s for a 2NN reply on
loopback, Sending -> Sent in the SuperNode's log) and then waits a second it
need not.

``retry_unavailable_objects_sooner`` makes the grid's object pulls retry
after 20 ms, doubling to at most 0.2 s apart (one request to the SuperLink
each). It changes the defaults of one module-level function in
``flwr.superlink.grid.http_grid``, not any Flower object; the simulation's
in-memory grid has no object pulls.
The pull logic, its total time limit and its errors stay Flower's.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

GRID_MODULE = "flwr.superlink.grid.http_grid"
PULL_FUNCTION = "pull_objects"
INITIAL_BACKOFF = 0.02
BACKOFF_CAP = 0.2
_MARK = "_fedavg_sooner_retry"


class PullHookMoved(RuntimeError):
    """flwr's grid no longer pulls objects the way this module expects."""


def _pull_function() -> tuple[Any, Callable[..., Any]]:
    module = importlib.import_module(GRID_MODULE)
    function = getattr(module, PULL_FUNCTION, None)
    if function is None:
        raise PullHookMoved(f"{GRID_MODULE}.{PULL_FUNCTION} no longer exists")
    target = getattr(function, "func", function)  # already wrapped: check the original
    parameters = inspect.signature(target).parameters
    missing = [p for p in ("initial_backoff", "backoff_cap") if p not in parameters]
    if missing:
        raise PullHookMoved(f"{GRID_MODULE}.{PULL_FUNCTION}: parameters {missing} are gone")
    return module, function


def retry_unavailable_objects_sooner(
    initial_backoff: float = INITIAL_BACKOFF, backoff_cap: float = BACKOFF_CAP
) -> None:
    """Make the deployment grid retry unavailable reply objects after ``initial_backoff`` s."""
    module, function = _pull_function()
    original = getattr(function, "func", function) if getattr(function, _MARK, False) else function
    sooner = functools.partial(original, initial_backoff=initial_backoff, backoff_cap=backoff_cap)
    setattr(sooner, _MARK, True)
    setattr(module, PULL_FUNCTION, sooner)
