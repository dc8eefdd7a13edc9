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
Each task stays in a process of its own, running Flower's ClientApp runtime;
this process survives a task that raises and one that dies, and answers for
the latter at once.

One module per job; what each does and why is in its docstring:

- ``cli``: the command line (``parse_args``, ``main``), start-up.
- ``preload``: what is imported once (``--preload``), and the app modules
  this process must not hold (they would shadow the FAB's copy).
- ``executor``: ``ForkExecutor``, the ``Executor`` Flower's loop drives, and
  its task bookkeeping.
- ``events``: the pipe protocol between a forked child and the parent.
- ``child``: the forked child, Flower's ClientApp runtime with its steps
  reported (``_child_main``, ``_install_hooks``).
- ``crash``: task timings, and the reply for a task that died.
- ``warming``: importing a FAB's ClientApp here and its prepare hook
  (``warm_app``, ``prepare_for_tasks``, ``PREPARE_HOOK``), with their state.
- ``flwr_internals``: every Flower internal the package relies on, and
  ``check_flwr_internals``: no other module imports flwr.

The package depends only on the standard library and flwr, and imports its own
modules relatively, so it runs both as ``clients.warm_executor`` here and
alone as ``warm_executor`` in the app image (``python -m warm_executor`` from
/app, deploy/docker/Dockerfile), without the app. docs/warm-executor.md has
the measurements.
"""

from .cli import main, parse_args
from .crash import report_crash, task_timings
from .events import Event
from .executor import ForkExecutor, use_fork_executor
from .flwr_internals import FLWR_INTERNALS, FlwrInternalMoved, check_flwr_internals
from .preload import preload
from .warming import PREPARE_HOOK, prepare_for_tasks, warm_app

__all__ = [
    "FLWR_INTERNALS",
    "PREPARE_HOOK",
    "Event",
    "FlwrInternalMoved",
    "ForkExecutor",
    "check_flwr_internals",
    "main",
    "parse_args",
    "preload",
    "prepare_for_tasks",
    "report_crash",
    "task_timings",
    "use_fork_executor",
    "warm_app",
]
