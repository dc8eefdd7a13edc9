"""The command line: ``fedavg-warm-executor``, ``python -m clients.warm_executor``, or
``python -m warm_executor`` from the app image's /app (the package alone: it depends
only on the standard library and flwr, so the image runs it without the app).

Run it beside a SuperNode started with ``--isolation process``::

    fedavg-warm-executor --insecure --runtime-api-address 127.0.0.1:9094

(the options are ``flower-superexec``'s). ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``
sets how often it asks for tasks; this executor defaults it to 0.1 s (Flower's
default is 1 s).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from . import flwr_internals
from .executor import ForkExecutor, use_fork_executor
from .preload import DEFAULT_PRELOAD, preload

POLL_INTERVAL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
DEFAULT_POLL_INTERVAL = "0.1"
LOGGER = logging.getLogger("fedavg.warm_executor")


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
    """Entry point: ``fedavg-warm-executor`` (or ``python -m warm_executor`` in the image)."""
    args = parse_args(argv)
    os.environ.setdefault(POLL_INTERVAL_ENV, DEFAULT_POLL_INTERVAL)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    flwr_internals.check_flwr_internals()
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
    secret = None
    if args.superexec_auth_secret_file is not None:
        secret = flwr_internals.load_superexec_auth_secret(args.superexec_auth_secret_file)
    use_fork_executor(ForkExecutor(max_tasks=args.max_tasks, warm_app=args.warm_app))
    flwr_internals.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        root_certificates_path=args.root_certificates,
        superexec_auth_secret=secret,
        parent_pid=args.parent_pid,
        health_server_address=args.health_server_address,
        runtime_dependency_install=args.runtime_dependency_install,
    )
