"""A warm ClientApp executor for a SuperNode: one long-lived process, a fork per task.

Flower's SuperExec (``flower-superexec``, beside a SuperNode started with
``--isolation process``) starts a fresh ``flwr-clientapp`` process for every
message: Python, flwr and torch are imported again each time (about 3.5 s of
CPU on a small machine, tens of seconds on a Raspberry-Pi-class node) before
the ClientApp runs. This executor replaces it. It imports flwr, torch and the
app's third-party dependencies once, then runs Flower's own SuperExec loop
(``run_superexec``: polling the SuperNode's Runtime API for tasks, TLS,
SuperExec authentication, health server, signal handling) with one change:
each acquired task is started by ``os.fork()`` instead of a new interpreter.
The child runs Flower's ClientApp runtime (``run_clientapp``, what
``flwr-clientapp`` calls) with the task's token, so the FAB is installed and
loaded, the message pulled, the ClientApp run and the reply pushed exactly as
with Flower's executor, and each task stays in a process of its own: a task
that raises gets Flower's error reply from Flower's code; a task that dies
(SIGKILL, segfault, out of memory) is noticed by this process at once, which
pushes the reply Flower would give once the task's heartbeat expires
(``ErrorCode.CLIENT_APP_CRASHED``) and marks the task failed, instead of
leaving the round waiting for the expiry. This process survives both.

What a task would otherwise repeat is done once: ``--preload`` imports the
app at start-up to pull in its heavy dependencies (torch, numpy, flwr), then
drops the app's own modules (a module imported here would shadow the FAB's
copy: Flower's loader takes ``sys.modules`` as it finds it). Once a task has
loaded a FAB's ClientApp, this process imports that module from the FAB's
installed directory, so later tasks find it imported; a task of another FAB
drops those modules and imports its own. A FAB that an earlier task installed
is not unzipped and verified again (Flower keeps the first installation of a
hash too). Each task's steps are logged: seconds from acquiring the task to
the fork, the message pulled, the FAB installed, the ClientApp loaded (app
code runs next), the reply pushed, the task finished.

Run it beside a SuperNode started with ``--isolation process``::

    fedavg-warm-executor --insecure --runtime-api-address 127.0.0.1:9094

(the options are ``flower-superexec``'s). ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``
sets how often it asks for tasks; this executor defaults it to 0.1 s (Flower's
default is 1 s). The file depends only on the standard library and flwr, so a
container image can run it without the app (``python warm_executor.py ...``).

Flower internals relied on (flwr 1.42, pinned ``<1.43``; listed in
``FLWR_INTERNALS`` and checked by tests/test_warm_executor.py):

- ``flwr.supercore.superexec.run_superexec``: ``run_superexec(...)`` and its
  module-level ``get_executor``, replaced here so that the loop uses
  ``ForkExecutor`` (the ``Executor`` protocol of
  ``flwr.supercore.superexec.executor.types``: ``get_eligible_capacity``,
  ``wait_for_capacity``, ``launch(ExecutionSpec)``, ``reconcile``, ``close``).
- ``flwr.supernode.runtime.run_clientapp``: ``run_clientapp(...)``, and the
  module-level ``pull_task_input``, ``install_from_fab``,
  ``get_load_client_app_fn``, ``push_message`` and ``push_task_output`` it
  calls (wrapped in the child to report progress; the last two also push a
  dead task's error reply), and ``pull_and_inflate_object_from_tree``
  (called with retries after 20 ms and then every 0.1 s at most, instead of
  1 s doubling: see ``OBJECT_PULL_INITIAL_BACKOFF``).
- ``flwr.supercore.object_ref.load_app`` takes a module found in
  ``sys.modules`` as it is: a child drops the app modules that do not come
  from its own FAB's directory before the ClientApp is loaded.
- ``flwr.common.config.get_project_config`` (the FAB's ClientApp reference).
- ``flwr.supercore.exit.exit_handler.registered_exit_handlers`` (a child
  drops the handlers it inherits, which would close the parent's client and
  stop its siblings).
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import hashlib
import importlib
import inspect
import logging
import os
import pickle
import signal
import struct
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

POLL_INTERVAL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
DEFAULT_POLL_INTERVAL = "0.1"
# torch.optim imports torch._dynamo the first time an optimizer is built (about 850
# modules, 1.3-2 s of CPU here): a task forked before that would pay it every time.
DEFAULT_PRELOAD = "torch,torch._dynamo,numpy,clients.app"
# A SuperNode hands out a task before it has pulled the message's objects (its arrays)
# from the SuperLink; a task that asks for one too early is told "unavailable" and Flower
# retries after 1 s, doubling. A task started within 0.1 s of the message (see the poll
# interval) nearly always asks too early, so retry after 20 ms, then at most every 0.1 s
# (one loopback request each; doubling up to 1 s turned a 0.35 s wait into 0.62 s; a
# 0.05 s cap showed no gain, and more polls compete with the SuperNode's own pull).
OBJECT_PULL_INITIAL_BACKOFF = 0.02
OBJECT_PULL_BACKOFF_CAP = 0.1
CRASH_REASON = "ClientApp stopped responding."  # Flower's CLIENT_APP_CRASHED_ERROR text
LOGGER = logging.getLogger("fedavg.warm_executor")

# (module, attribute, parameters the attribute must accept; None = not a function we call)
FLWR_INTERNALS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    (
        "flwr.supercore.superexec.run_superexec",
        "run_superexec",
        (
            "runtime_api_address",
            "insecure",
            "root_certificates_path",
            "superexec_auth_secret",
            "parent_pid",
            "health_server_address",
            "runtime_dependency_install",
            "executor_type",
        ),
    ),
    ("flwr.supercore.superexec.run_superexec", "get_executor", None),
    (
        "flwr.supernode.runtime.run_clientapp",
        "run_clientapp",
        (
            "runtime_api_address",
            "token",
            "insecure",
            "certificates",
            "parent_pid",
            "runtime_dependency_install",
        ),
    ),
    ("flwr.supernode.runtime.run_clientapp", "pull_task_input", ("client",)),
    (
        "flwr.supernode.runtime.run_clientapp",
        "pull_and_inflate_object_from_tree",
        ("initial_backoff", "backoff_cap"),
    ),
    (
        "flwr.supernode.runtime.run_clientapp",
        "get_load_client_app_fn",
        ("default_app_ref", "app_path", "multi_app"),
    ),
    ("flwr.common.config", "get_project_config", ("project_dir",)),
    ("flwr.supernode.runtime.run_clientapp", "install_from_fab", ("fab_file", "skip_prompt")),
    ("flwr.supernode.runtime.run_clientapp", "push_message", ("client", "message", "context")),
    (
        "flwr.supernode.runtime.run_clientapp",
        "push_task_output",
        ("client", "context", "sub_status", "details"),
    ),
    ("flwr.supercore.exit.exit_handler", "registered_exit_handlers", None),
    (
        "flwr.supercore.superexec.executor.types",
        "ExecutionSpec",
        (
            "task_type",
            "runtime_api_address",
            "token",
            "insecure",
            "root_certificates_path",
            "runtime_dependency_install",
            "parent_pid",
            "task_id",
        ),
    ),
)


class FlwrInternalMoved(RuntimeError):
    """A Flower internal this executor hooks into is gone or changed its signature."""


def check_flwr_internals() -> None:
    """Fail, naming the internal, if one this executor relies on moved (see module doc)."""
    for module_name, attribute, params in FLWR_INTERNALS:
        where = f"{module_name}.{attribute}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise FlwrInternalMoved(f"{where}: module not importable ({error})") from None
        if not hasattr(module, attribute):
            raise FlwrInternalMoved(f"{where}: no longer exists")
        if params is None:
            continue
        signature = inspect.signature(getattr(module, attribute))
        missing = [name for name in params if name not in signature.parameters]
        if missing:
            raise FlwrInternalMoved(f"{where}: parameters {missing} are gone ({signature})")


# --- events a child reports to the parent through a pipe ------------------------------


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

# FAB hash -> the directory an earlier task installed it in. Filled in the parent from
# its children's reports; a child inherits it with the fork.
INSTALLED_FABS: dict[str, Path] = {}


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


# --- the child: Flower's ClientApp runtime, in a forked process -----------------------


def _app_modules(app_dir: Path) -> list[str]:
    """Modules in ``sys.modules`` that belong to the app in ``app_dir`` but were not loaded from it.

    A module of the app imported before the task (by ``--preload``, or the
    executor's own package) would shadow the FAB's copy.
    """
    top_level = {p.stem if p.suffix == ".py" else p.name for p in app_dir.iterdir()}
    root = str(app_dir.resolve())
    stale = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in top_level:
            continue
        file = getattr(module, "__file__", None) or ""
        if not file or not str(Path(file).resolve()).startswith(root):
            stale.append(name)
    return stale


def _install_hooks(events_fd: int) -> None:
    """Wrap the runtime's steps so that the parent learns how far the task got."""
    from flwr.common.serde import message_to_proto
    from flwr.supernode.runtime import run_clientapp as runtime

    original_pull = runtime.pull_task_input
    original_pull_objects = runtime.pull_and_inflate_object_from_tree
    original_install = runtime.install_from_fab
    original_loader = runtime.get_load_client_app_fn
    original_push = runtime.push_message
    original_output = runtime.push_task_output

    def pull_task_input(client: Any) -> Any:
        message, context, run, fab = original_pull(client)
        proto = message_to_proto(runtime.remove_content_from_message(message))
        _write_event(
            events_fd,
            Event.PULLED,
            (
                time.time(),
                proto.SerializeToString(),
                dict(context.run_config),
                dict(context.node_config),
            ),
        )
        return message, context, run, fab

    def pull_and_inflate_object_from_tree(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("initial_backoff", OBJECT_PULL_INITIAL_BACKOFF)
        kwargs.setdefault("backoff_cap", OBJECT_PULL_BACKOFF_CAP)
        return original_pull_objects(*args, **kwargs)

    def install_from_fab(fab_file: Any, *args: Any, **kwargs: Any) -> Path:
        fab_hash = hashlib.sha256(fab_file).hexdigest() if isinstance(fab_file, bytes) else ""
        known = INSTALLED_FABS.get(fab_hash)
        if known is not None and known.is_dir():
            # Installed (unzipped, hashes verified) by an earlier task of this executor:
            # Flower would unzip and verify the same bytes again, then keep that directory.
            app_dir = known
        else:
            app_dir = Path(original_install(fab_file, *args, **kwargs))
        for name in _app_modules(app_dir):
            del sys.modules[name]
        _write_event(events_fd, Event.INSTALLED, (time.time(), fab_hash, str(app_dir)))
        return app_dir

    def get_load_client_app_fn(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        load = original_loader(*args, **kwargs)

        def load_and_report(*load_args: Any) -> Any:
            client_app = load(*load_args)
            _write_event(events_fd, Event.LOADED, time.time())
            return client_app

        return load_and_report

    def push_message(*args: Any, **kwargs: Any) -> None:
        original_push(*args, **kwargs)
        _write_event(events_fd, Event.REPLIED, time.time())

    def push_task_output(*args: Any, **kwargs: Any) -> None:
        original_output(*args, **kwargs)
        _write_event(events_fd, Event.FINISHED, time.time())

    runtime.pull_task_input = pull_task_input  # type: ignore[assignment]
    runtime.pull_and_inflate_object_from_tree = pull_and_inflate_object_from_tree  # type: ignore[assignment]
    runtime.install_from_fab = install_from_fab  # type: ignore[assignment]
    runtime.get_load_client_app_fn = get_load_client_app_fn  # type: ignore[assignment]
    runtime.push_message = push_message  # type: ignore[assignment]
    runtime.push_task_output = push_task_output  # type: ignore[assignment]


def _child_main(spec: Any, events_fd: int) -> None:
    """Run one task with Flower's ClientApp runtime, then leave without returning."""
    code = 1
    try:
        _write_event(events_fd, Event.STARTED, time.time())
        # Start as a fresh flwr-clientapp would: default signal handling, no exit
        # handlers (the inherited ones close the parent's client and stop siblings).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        from flwr.supercore.exit import exit_handler
        from flwr.supercore.tls import validate_and_resolve_root_certificates
        from flwr.supernode.runtime import run_clientapp as runtime

        exit_handler.registered_exit_handlers.clear()
        _install_hooks(events_fd)
        runtime.run_clientapp(
            runtime_api_address=spec.runtime_api_address,
            token=spec.token,
            insecure=spec.insecure,
            certificates=validate_and_resolve_root_certificates(
                spec.root_certificates_path, spec.insecure
            ),
            parent_pid=spec.parent_pid,
            runtime_dependency_install=spec.runtime_dependency_install,
        )
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


# --- the parent: the Executor that Flower's SuperExec loop drives --------------------


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


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


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
        from flwr.supercore.constant import TaskType

        self._client_app = TaskType.CLIENT_APP
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
        from flwr.supercore.superexec.executor.types import LaunchResult

        if spec.task_type != self._client_app:
            return LaunchResult.failed(f"runs ClientApps only, not {spec.task_type}")
        read_fd, write_fd = os.pipe()
        launched = time.time()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(read_fd)
            os.close(write_fd)
            return LaunchResult.failed(f"fork failed: {error}")
        if pid == 0:  # the child
            os.close(read_fd)
            _child_main(spec, write_fd)  # never returns
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.tasks[pid] = _Task(pid=pid, spec=spec, events_fd=read_fd, launched=launched)
        return LaunchResult.accepted()

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
    from flwr.app import Context, Error, Message, RecordDict
    from flwr.common.constant import ErrorCode, SubStatus
    from flwr.common.serde import message_from_proto
    from flwr.proto.message_pb2 import Message as ProtoMessage
    from flwr.supercore.interceptors import (
        RuntimeTokenHttpInterceptor,
        RuntimeVersionHttpInterceptor,
    )
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.supernode.runtime import run_clientapp as runtime

    retry = make_simple_http_retry_invoker()
    retry.max_tries = 3
    client = RuntimeHttpClient.from_server_address(
        server_address=spec.runtime_api_address,
        insecure=spec.insecure,
        root_certificates=validate_and_resolve_root_certificates(
            spec.root_certificates_path, spec.insecure
        ),
        interceptors=[
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(spec.token),
        ],
        retry_invoker=retry,
    )
    try:
        if Event.PULLED in events and Event.REPLIED not in events:
            proto = ProtoMessage()
            proto.ParseFromString(events[Event.PULLED][1])
            message = message_from_proto(proto)
            reply = Message(Error(ErrorCode.CLIENT_APP_CRASHED, reason), reply_to=message)
            context = Context(
                run_id=message.metadata.run_id,
                node_id=message.metadata.dst_node_id,
                node_config={},
                state=RecordDict(),
                run_config={},
            )
            runtime.push_message(client, reply, context)
        runtime.push_task_output(client, None, SubStatus.FAILED, reason)
    finally:
        client.close()


# --- start-up -------------------------------------------------------------------------


_WARM_APP_DIR: list[Path] = []  # the FAB directory whose ClientApp this process holds
_WARM_APP_MODULE: list[ModuleType] = []  # and that ClientApp's module
PREPARE_HOOK = "warm_executor_prepare"
_PREPARED: list[tuple[str, tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]] = []
_PREPARED_KEEP = 8  # (FAB, run config, node config) triples remembered


def warm_app(app_dir: Path) -> None:
    """Import the ClientApp module of the FAB in ``app_dir`` here, for later forks.

    Only after a task loaded it without error. A child checks, after the FAB
    install, that each app module it holds comes from its own FAB's directory
    and drops those that do not, so another FAB (or version) loads its own.
    """
    if _WARM_APP_DIR == [app_dir]:
        return
    try:
        from flwr.common.config import get_project_config

        reference = get_project_config(app_dir)["tool"]["flwr"]["app"]["components"]["clientapp"]
        for name in _app_modules(app_dir):
            del sys.modules[name]
        for old in _WARM_APP_DIR:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(old))
        sys.path.insert(0, str(app_dir))
        _WARM_APP_DIR[:] = [app_dir]
        started = time.monotonic()
        _PREPARED.clear()  # a fresh import holds nothing its hook loaded before
        _WARM_APP_MODULE[:] = [importlib.import_module(reference.partition(":")[0])]
        LOGGER.info("imported %s from %s in %.2f s", reference, app_dir, time.monotonic() - started)
    except Exception as error:  # the tasks import it themselves, as without warming
        LOGGER.warning("could not import the ClientApp of %s here: %s", app_dir, error)
        _WARM_APP_MODULE.clear()
        for name in _app_modules(app_dir):
            del sys.modules[name]


def prepare_for_tasks(
    app_dir: Path, run_config: dict[str, Any], node_config: dict[str, Any]
) -> None:
    """Let the warm ClientApp load here what each later task of the run would load again.

    A ClientApp module may define ``warm_executor_prepare(run_config,
    node_config)``; ours loads the node's data (``clients.app``). It is called
    in this process once per (FAB, run config, node config), after a task with
    those has completed, so that later forks inherit what it loaded instead
    of each loading it. It must not start threads (this process forks), and
    what it caches must still be checked by the tasks against its source
    (ours keys its cache on the data file's inode, size and mtime). A hook
    that raises is logged and the tasks load for themselves, as without it.
    """
    if _WARM_APP_DIR != [app_dir] or not _WARM_APP_MODULE:
        return
    hook = getattr(_WARM_APP_MODULE[0], PREPARE_HOOK, None)
    if not callable(hook):
        return
    try:
        key = (str(app_dir), tuple(sorted(run_config.items())), tuple(sorted(node_config.items())))
    except TypeError:  # values that do not sort: not worth a guess
        return
    if key in _PREPARED:
        return
    _PREPARED[:] = [*_PREPARED[-(_PREPARED_KEEP - 1) :], key]
    started = time.monotonic()
    try:
        hook(dict(run_config), dict(node_config))
    except Exception as error:
        LOGGER.warning(
            "%s of %s failed (tasks load for themselves): %s", PREPARE_HOOK, app_dir, error
        )
        return
    LOGGER.info("%s of %s took %.2f s", PREPARE_HOOK, app_dir, time.monotonic() - started)


def _interpreter_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(str(Path(p).resolve()) for p in paths)


def preload(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """Import ``modules`` (and what they import), then drop the app's own modules.

    Third-party modules stay imported, so every task starts with them. Modules
    from outside the interpreter's own directories (the app, wherever it was
    imported from) are dropped: each task imports the FAB's copy. Returns
    (imported, not found).
    """
    imported, missing = [], []
    for name in modules:
        try:
            importlib.import_module(name)
            imported.append(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
    own = _interpreter_paths()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or not file:
            continue
        if not str(Path(file).resolve()).startswith(own):
            del sys.modules[name]
    return imported, missing


def use_fork_executor(executor: ForkExecutor) -> None:
    """Make Flower's SuperExec loop (``run_superexec``) launch tasks with ``executor``."""
    from flwr.supercore.superexec import run_superexec as superexec

    def get_executor(*args: Any, **kwargs: Any) -> ForkExecutor:
        del args, kwargs
        return executor

    superexec.get_executor = get_executor  # type: ignore[assignment]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``flower-superexec``'s options that apply to a SuperNode's executor, plus ours."""
    parser = argparse.ArgumentParser(
        prog="fedavg-warm-executor",
        description="Run a SuperNode's ClientApp tasks from one warm process (a fork per task).",
    )
    parser.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API")
    parser.add_argument("--insecure", action="store_true", help="no TLS to the Runtime API")
    parser.add_argument("--root-certificates", default=None, help="CA for the Runtime API's TLS")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this PID exits")
    parser.add_argument(
        "--superexec-auth-secret-file",
        default=None,
        help="SuperExec authentication secret, as flower-superexec's option of this name",
    )
    parser.add_argument("--health-server-address", default=None)
    parser.add_argument(
        "--allow-runtime-dependency-installation",
        dest="runtime_dependency_install",
        action="store_true",
    )
    parser.add_argument(
        "--preload",
        default=DEFAULT_PRELOAD,
        help=f"modules to import once, comma-separated [{DEFAULT_PRELOAD}]",
    )
    parser.add_argument(
        "--max-tasks", type=int, default=None, help="tasks running at once [no limit]"
    )
    parser.add_argument(
        "--no-warm-app",
        dest="warm_app",
        action="store_false",
        help="do not import a FAB's ClientApp here after its first task (each task imports it)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``fedavg-warm-executor`` (or ``python warm_executor.py``)."""
    args = parse_args(argv)
    os.environ.setdefault(POLL_INTERVAL_ENV, DEFAULT_POLL_INTERVAL)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    check_flwr_internals()
    started = time.monotonic()
    imported, missing = preload(m for m in args.preload.split(",") if m)
    LOGGER.info(
        "warm in %.1f s (preloaded %s%s); polling %s every %s s",
        time.monotonic() - started,
        ", ".join(imported) or "nothing",
        f"; not found: {', '.join(missing)}" if missing else "",
        args.runtime_api_address,
        os.environ[POLL_INTERVAL_ENV],
    )
    from flwr.supercore.superexec import run_superexec as superexec

    secret = None
    if args.superexec_auth_secret_file is not None:
        from flwr.supercore.auth import load_superexec_auth_secret

        secret = load_superexec_auth_secret(secret_file=args.superexec_auth_secret_file)
    use_fork_executor(ForkExecutor(max_tasks=args.max_tasks, warm_app=args.warm_app))
    superexec.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        root_certificates_path=args.root_certificates,
        superexec_auth_secret=secret,
        parent_pid=args.parent_pid,
        health_server_address=args.health_server_address,
        runtime_dependency_install=args.runtime_dependency_install,
    )


if __name__ == "__main__":
    main()
