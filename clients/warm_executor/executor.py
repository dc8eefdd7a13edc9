"""The parent: the ``Executor`` that Flower's SuperExec loop drives, a fork per task.

Flower's SuperExec (``flower-superexec``, beside a SuperNode started with
``--isolation process``) starts a fresh ``flwr-clientapp`` process for every
message. This executor runs Flower's own SuperExec loop (``run_superexec``)
with one change: each acquired task is started by ``os.fork()`` instead of a
new interpreter (``ForkExecutor``, the loop's ``Executor``). The parent reads
each child's reports (``events``) while it runs, reaps it when it ends, warms
the app from what it reported (``warming``), and answers for a child that died
without replying (``crash``). It survives both a task that raises and one
that dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import flwr_internals
from .child import INSTALLED_FABS, _child_main
from .crash import CRASH_REASON, _describe_exit, report_crash, task_timings
from .events import Event, _parse_events
from .warming import prepare_for_tasks, warm_app

LOGGER = logging.getLogger("fedavg.warm_executor")


@dataclass
class _Task:
    """A running task's child process, as the parent sees it."""

    pid: int
    spec: Any
    events_fd: int
    launched: float
    buffer: bytes = b""
    events: dict[Event, Any] = field(default_factory=dict)

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.events_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self.buffer += chunk
            parsed, self.buffer = _parse_events(self.buffer)
            for event, payload in parsed:
                self.events[event] = payload


class ForkExecutor:
    """Flower's ``Executor`` protocol, starting each ClientApp task by ``os.fork()``.

    ``max_tasks`` caps the tasks running at once (None: no cap, as Flower's
    subprocess executor). With ``warm_app``, once a task has loaded a FAB's
    ClientApp, this process imports that ClientApp's module from the FAB's
    directory too, so that later tasks of the FAB find it imported.
    ``on_task_done(task_id, timings, outcome)`` is told each task's end.
    """

    def __init__(
        self,
        *,
        max_tasks: int | None = None,
        warm_app: bool = True,
        on_task_done: Callable[[int, dict[str, float], str], None] | None = None,
    ) -> None:
        self._client_app = flwr_internals.client_app_task_type()
        self.max_tasks = max_tasks
        self.warm_app = warm_app
        self.on_task_done = on_task_done
        self.tasks: dict[int, _Task] = {}
        self.completed = 0
        self.crashed = 0

    # Executor protocol --------------------------------------------------------------
    def get_eligible_capacity(
        self,
        supported_task_types: set[Any],
        *,
        insecure: bool = False,
        root_certificates_path: str | None = None,
    ) -> tuple[set[Any], set[str]]:
        """ClientApp tasks only, while under ``max_tasks``."""
        del insecure, root_certificates_path
        self.reconcile()
        if self.max_tasks is not None and len(self.tasks) >= self.max_tasks:
            return set(), set()
        return {t for t in supported_task_types if t == self._client_app}, set()

    def wait_for_capacity(self, task_type: Any = None, **kwargs: Any) -> None:
        """No capacity gate besides ``max_tasks`` (checked before acquiring)."""
        del task_type, kwargs

    def launch(self, spec: Any) -> Any:
        """Fork a child that runs the task with Flower's ClientApp runtime."""
        if spec.task_type != self._client_app:
            return flwr_internals.launch_failed(f"runs ClientApps only, not {spec.task_type}")
        read_fd, write_fd = os.pipe()
        launched = time.time()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(read_fd)
            os.close(write_fd)
            return flwr_internals.launch_failed(f"fork failed: {error}")
        if pid == 0:  # the child
            os.close(read_fd)
            _child_main(spec, write_fd)  # never returns
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.tasks[pid] = _Task(pid=pid, spec=spec, events_fd=read_fd, launched=launched)
        return flwr_internals.launch_accepted()

    def reconcile(self) -> None:
        """Reap finished children; answer for those that died without replying."""
        for pid, task in list(self.tasks.items()):
            task.drain()
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: nothing more to learn
                done, status = pid, 0
            if done == 0:
                continue
            task.drain()
            os.close(task.events_fd)
            del self.tasks[pid]
            self._finish(task, status)

    def close(self) -> None:
        """Stop the running tasks (SIGTERM, then SIGKILL after 5 s) and reap them."""
        for pid in self.tasks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while self.tasks and time.monotonic() < deadline:
            self.reconcile()
            time.sleep(0.05)
        for pid in list(self.tasks):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(self.tasks.pop(pid).events_fd)

    # ---------------------------------------------------------------------------------
    def _finish(self, task: _Task, status: int) -> None:
        timings = task_timings(task.launched, task.events)
        if Event.INSTALLED in task.events:
            _, fab_hash, app_dir = task.events[Event.INSTALLED]
            if fab_hash:
                INSTALLED_FABS[fab_hash] = Path(app_dir)
            if self.warm_app and Event.LOADED in task.events:
                warm_app(Path(app_dir))
                if Event.FINISHED in task.events and Event.PULLED in task.events:
                    _, _, run_config, node_config = task.events[Event.PULLED]
                    prepare_for_tasks(Path(app_dir), run_config, node_config)
        if Event.FINISHED in task.events:
            outcome = "completed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
            self.completed += 1
        else:
            outcome = f"crashed ({_describe_exit(status)})"
            self.crashed += 1
            LOGGER.error(
                "task %d %s before it finished; answering for it", task.spec.task_id, outcome
            )
            try:
                report_crash(task.spec, task.events, f"{CRASH_REASON} ({_describe_exit(status)})")
            except Exception as error:  # the SuperNode's token expiry still answers
                LOGGER.error("could not report task %d: %s", task.spec.task_id, error)
        LOGGER.info(
            "task %d %s: %s",
            task.spec.task_id,
            outcome,
            ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()),
        )
        if self.on_task_done is not None:
            self.on_task_done(task.spec.task_id, timings, outcome)


def use_fork_executor(executor: ForkExecutor) -> None:
    """Make Flower's SuperExec loop (``run_superexec``) launch tasks with ``executor``."""
    flwr_internals.use_executor(executor)
