"""Every Flower internal the warm executor relies on, in one file (flwr 1.42, pinned ``<1.43``).

The rest of the package imports nothing from flwr: it calls the functions
here, so a Flower upgrade is checked against this file alone. What is looked
up by name is listed in ``FLWR_INTERNALS`` and checked by
``check_flwr_internals`` (at start-up, and by tests/test_warm_executor.py),
which fails naming the internal if one moved. flwr is imported inside the
functions, when first needed, as the package needs nothing else at import.

- ``flwr.supercore.superexec.run_superexec``: ``run_superexec(...)`` and its
  module-level ``get_executor``, replaced here (``use_executor``) so that the
  loop uses ``ForkExecutor`` (the ``Executor`` protocol of
  ``flwr.supercore.superexec.executor.types``: ``get_eligible_capacity``,
  ``wait_for_capacity``, ``launch(ExecutionSpec)``, ``reconcile``, ``close``).
- ``flwr.supernode.runtime.run_clientapp``: ``run_clientapp(...)``, and the
  module-level ``pull_task_input``, ``install_from_fab``,
  ``get_load_client_app_fn``, ``push_message`` and ``push_task_output`` it
  calls (wrapped in the child to report progress, ``hook_clientapp_runtime``;
  the last two also push a dead task's error reply), and
  ``pull_and_inflate_object_from_tree`` (called with retries after 20 ms and
  then every 0.1 s at most, instead of 1 s doubling: see
  ``child.OBJECT_PULL_INITIAL_BACKOFF``).
- ``flwr.supercore.object_ref.load_app`` takes a module found in
  ``sys.modules`` as it is: a child drops the app modules that do not come
  from its own FAB's directory before the ClientApp is loaded.
- ``flwr.common.config.get_project_config`` (the FAB's ClientApp reference).
- ``flwr.supercore.exit.exit_handler.registered_exit_handlers`` (a child
  drops the handlers it inherits, which would close the parent's client and
  stop its siblings).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# --- the SuperExec loop, in the parent ------------------------------------------------


def use_executor(executor: object) -> None:
    """Make Flower's SuperExec loop (``run_superexec``) launch tasks with ``executor``."""
    from flwr.supercore.superexec import run_superexec as superexec

    def get_executor(*args: Any, **kwargs: Any) -> Any:
        del args, kwargs
        return executor

    superexec.get_executor = get_executor


def load_superexec_auth_secret(secret_file: str) -> Any:
    """The SuperExec authentication secret, read as ``flower-superexec`` reads it."""
    from flwr.supercore.auth import load_superexec_auth_secret as load

    return load(secret_file=secret_file)


def run_superexec(
    *,
    runtime_api_address: str,
    insecure: bool,
    root_certificates_path: str | None,
    superexec_auth_secret: Any,
    parent_pid: int | None,
    health_server_address: str | None,
    runtime_dependency_install: bool,
) -> None:
    """Flower's own SuperExec loop, launching with the executor ``use_executor`` set."""
    from flwr.supercore.superexec import run_superexec as superexec

    superexec.run_superexec(
        runtime_api_address=runtime_api_address,
        insecure=insecure,
        root_certificates_path=root_certificates_path,
        superexec_auth_secret=superexec_auth_secret,
        parent_pid=parent_pid,
        health_server_address=health_server_address,
        runtime_dependency_install=runtime_dependency_install,
    )


def client_app_task_type() -> Any:
    """``TaskType.CLIENT_APP``: the only tasks a SuperNode's executor runs."""
    from flwr.supercore.constant import TaskType

    return TaskType.CLIENT_APP


def launch_accepted() -> Any:
    """What ``Executor.launch`` returns for a task it started."""
    from flwr.supercore.superexec.executor.types import LaunchResult

    return LaunchResult.accepted()


def launch_failed(reason: str) -> Any:
    """What ``Executor.launch`` returns for a task it could not start."""
    from flwr.supercore.superexec.executor.types import LaunchResult

    return LaunchResult.failed(reason)


# --- the ClientApp runtime, in a forked child -----------------------------------------


def drop_inherited_exit_handlers() -> None:
    """Forget the exit handlers a child inherits: they close the parent's client and stop
    its siblings."""
    from flwr.supercore.exit import exit_handler

    exit_handler.registered_exit_handlers.clear()


def hook_clientapp_runtime(
    *,
    on_pulled: Callable[[bytes, dict[str, Any], dict[str, Any]], None],
    install_fab: Callable[[Any, Callable[[], Path]], Path],
    on_loaded: Callable[[], None],
    on_replied: Callable[[], None],
    on_finished: Callable[[], None],
    object_pull_backoff: tuple[float, float],
) -> None:
    """Wrap the module-level functions that ``run_clientapp(...)`` calls.

    ``on_pulled(message, run_config, node_config)`` once the task's message is
    pulled (the message serialized without its content); ``install_fab(fab_file,
    install)`` installs the FAB instead of Flower (``install()`` is Flower's
    installation) and returns the app directory; ``on_loaded`` once the
    ClientApp is loaded (app code runs next); ``on_replied`` once the reply is
    pushed; ``on_finished`` once the task output is pushed.
    ``object_pull_backoff`` is (initial backoff, cap) of the object pulls.
    """
    from flwr.common.serde import message_to_proto
    from flwr.supernode.runtime import run_clientapp as runtime

    original_pull = runtime.pull_task_input
    original_pull_objects = runtime.pull_and_inflate_object_from_tree
    original_install = runtime.install_from_fab
    original_loader = runtime.get_load_client_app_fn
    original_push = runtime.push_message
    original_output = runtime.push_task_output
    initial_backoff, backoff_cap = object_pull_backoff

    def pull_task_input(client: Any) -> Any:
        message, context, run, fab = original_pull(client)
        proto = message_to_proto(runtime.remove_content_from_message(message))
        on_pulled(proto.SerializeToString(), dict(context.run_config), dict(context.node_config))
        return message, context, run, fab

    def pull_and_inflate_object_from_tree(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("initial_backoff", initial_backoff)
        kwargs.setdefault("backoff_cap", backoff_cap)
        return original_pull_objects(*args, **kwargs)

    def install_from_fab(fab_file: Any, *args: Any, **kwargs: Any) -> Path:
        return install_fab(fab_file, lambda: Path(original_install(fab_file, *args, **kwargs)))

    def get_load_client_app_fn(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        load = original_loader(*args, **kwargs)

        def load_and_report(*load_args: Any) -> Any:
            client_app = load(*load_args)
            on_loaded()
            return client_app

        return load_and_report

    def push_message(*args: Any, **kwargs: Any) -> None:
        original_push(*args, **kwargs)
        on_replied()

    def push_task_output(*args: Any, **kwargs: Any) -> None:
        original_output(*args, **kwargs)
        on_finished()

    runtime.pull_task_input = pull_task_input  # type: ignore[assignment]
    runtime.pull_and_inflate_object_from_tree = pull_and_inflate_object_from_tree  # type: ignore[assignment]
    runtime.install_from_fab = install_from_fab  # type: ignore[assignment]
    runtime.get_load_client_app_fn = get_load_client_app_fn  # type: ignore[assignment]
    runtime.push_message = push_message  # type: ignore[assignment]
    runtime.push_task_output = push_task_output  # type: ignore[assignment]


def run_clientapp(spec: Any) -> None:
    """Flower's ClientApp runtime (what ``flwr-clientapp`` calls) for the task ``spec``
    (an ``ExecutionSpec``), with the task's token. Ends with ``SystemExit``."""
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.supernode.runtime import run_clientapp as runtime

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


# --- a dead task's reply, from the parent ---------------------------------------------


@contextlib.contextmanager
def runtime_client(spec: Any) -> Iterator[Any]:
    """A client of the SuperNode's Runtime API with the task's token, as the child had."""
    from flwr.supercore.interceptors import (
        RuntimeTokenHttpInterceptor,
        RuntimeVersionHttpInterceptor,
    )
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supercore.tls import validate_and_resolve_root_certificates

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
        yield client
    finally:
        client.close()


def push_crash_reply(client: Any, pulled_message: bytes, reason: str) -> None:
    """Push Flower's ``CLIENT_APP_CRASHED`` error reply to the message a child pulled
    (``pulled_message``: as ``on_pulled`` got it)."""
    from flwr.app import Context, Error, Message, RecordDict
    from flwr.common.constant import ErrorCode
    from flwr.common.serde import message_from_proto
    from flwr.proto.message_pb2 import Message as ProtoMessage
    from flwr.supernode.runtime import run_clientapp as runtime

    proto = ProtoMessage()
    proto.ParseFromString(pulled_message)
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


def push_failed_task_output(client: Any, reason: str) -> None:
    """Mark the task failed (``SubStatus.FAILED``), as the SuperNode does for a dead one."""
    from flwr.common.constant import SubStatus
    from flwr.supernode.runtime import run_clientapp as runtime

    runtime.push_task_output(client, None, SubStatus.FAILED, reason)


# --- warming the ClientApp, in the parent ---------------------------------------------


def clientapp_reference(app_dir: Path) -> str:
    """The FAB's ClientApp reference (``module:attribute``) from its pyproject.toml."""
    from flwr.common.config import get_project_config

    reference: str = get_project_config(app_dir)["tool"]["flwr"]["app"]["components"]["clientapp"]
    return reference
