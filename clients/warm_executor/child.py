"""A task's forked child: Flower's ClientApp runtime, reporting each step to the parent.

The child runs Flower's ClientApp runtime (``run_clientapp``, what
``flwr-clientapp`` calls) with the task's token, so the FAB is installed and
loaded, the message pulled, the ClientApp run and the reply pushed exactly as
with Flower's executor, and each task stays in a process of its own: a task
that raises gets Flower's error reply from Flower's code. The runtime's steps
are wrapped only to report them (``events``) and to skip what an earlier task
of this executor already did: a FAB that an earlier task installed is not
unzipped and verified again (Flower keeps the first installation of a hash
too), and the objects of a message are asked for again sooner.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import flwr_internals
from .events import Event, _write_event
from .preload import _app_modules

# A SuperNode hands out a task before it has pulled the message's objects (its arrays)
# from the SuperLink; a task that asks for one too early is told "unavailable" and Flower
# retries after 1 s, doubling. A task started within 0.1 s of the message (see the poll
# interval) nearly always asks too early, so retry after 20 ms, then at most every 0.1 s
# (one loopback request each; doubling up to 1 s turned a 0.35 s wait into 0.62 s; a
# 0.05 s cap showed no gain, and more polls compete with the SuperNode's own pull).
OBJECT_PULL_INITIAL_BACKOFF = 0.02
OBJECT_PULL_BACKOFF_CAP = 0.1

# FAB hash -> the directory an earlier task installed it in. Filled in the parent from
# its children's reports; a child inherits it with the fork.
INSTALLED_FABS: dict[str, Path] = {}


def _install_hooks(events_fd: int) -> None:
    """Wrap the runtime's steps so that the parent learns how far the task got."""

    def on_pulled(message: bytes, run_config: dict[str, Any], node_config: dict[str, Any]) -> None:
        _write_event(events_fd, Event.PULLED, (time.time(), message, run_config, node_config))

    def install_fab(fab_file: Any, install: Callable[[], Path]) -> Path:
        fab_hash = hashlib.sha256(fab_file).hexdigest() if isinstance(fab_file, bytes) else ""
        known = INSTALLED_FABS.get(fab_hash)
        if known is not None and known.is_dir():
            # Installed (unzipped, hashes verified) by an earlier task of this executor:
            # Flower would unzip and verify the same bytes again, then keep that directory.
            app_dir = known
        else:
            app_dir = install()
        for name in _app_modules(app_dir):
            del sys.modules[name]
        _write_event(events_fd, Event.INSTALLED, (time.time(), fab_hash, str(app_dir)))
        return app_dir

    flwr_internals.hook_clientapp_runtime(
        on_pulled=on_pulled,
        install_fab=install_fab,
        on_loaded=lambda: _write_event(events_fd, Event.LOADED, time.time()),
        on_replied=lambda: _write_event(events_fd, Event.REPLIED, time.time()),
        on_finished=lambda: _write_event(events_fd, Event.FINISHED, time.time()),
        object_pull_backoff=(OBJECT_PULL_INITIAL_BACKOFF, OBJECT_PULL_BACKOFF_CAP),
    )


def _child_main(spec: Any, events_fd: int) -> None:
    """Run one task with Flower's ClientApp runtime, then leave without returning."""
    code = 1
    try:
        _write_event(events_fd, Event.STARTED, time.time())
        # Start as a fresh flwr-clientapp would: default signal handling, no exit
        # handlers (the inherited ones close the parent's client and stop siblings).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        flwr_internals.drop_inherited_exit_handlers()
        _install_hooks(events_fd)
        flwr_internals.run_clientapp(spec)
        code = 0
    except SystemExit as done:  # run_clientapp ends with flwr_exit -> sys.exit
        code = done.code if isinstance(done.code, int) else 1
    except BaseException:  # a failure outside the ClientApp (which Flower handles itself)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
