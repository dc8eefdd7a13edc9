"""The tasks, by the run config's ``task`` name: each task package registers itself here.

A task is a model and its data (``tasks.base.Task``) plus the paper's target
accuracy. Its package's ``__init__`` calls ``register`` once per task name;
``TASK_PACKAGES`` lists the packages, one line each. Adding a task is its own
folder and one line here: the run config's allowed ``task`` values, the target
accuracies and the benchmarks' targets are all read from this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protocol.config import ExperimentConfig, parse_config
from tasks.base import Task

# Importing each of these registers its tasks.
TASK_PACKAGES = (
    "tasks.mnist",
    "tasks.shakespeare",
    "tasks.bench",  # benchmark-only: a ~50 MB model on synthetic data
)


@dataclass(frozen=True)
class TaskSpec:
    """One registered task.

    Attributes:
        name: the run config's ``task`` value.
        target_accuracy: the paper's target test accuracy for rounds-to-target
            (section 3), used when the run config's ``target-accuracy`` is 0.
        load: returns the task (model and data); called on first use, so that
            listing tasks imports no model or data code.
    """

    name: str
    target_accuracy: float
    load: Callable[[], Task]


_TASKS: dict[str, TaskSpec] = {}
_loaded = False


def register(name: str, *, target_accuracy: float, load: Callable[[], Task]) -> None:
    """Register task ``name``; called once per task by its package."""
    if name in _TASKS:
        raise ValueError(f"task {name!r} is registered twice")
    if not 0 < target_accuracy <= 1:
        raise ValueError(f"task {name!r}: target accuracy {target_accuracy} is not in (0, 1]")
    _TASKS[name] = TaskSpec(name, target_accuracy, load)


def _registry() -> dict[str, TaskSpec]:
    global _loaded  # noqa: PLW0603 - loaded once per process
    if not _loaded:
        _loaded = True
        for package in TASK_PACKAGES:
            importlib.import_module(package)
    return _TASKS


def task_names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    return tuple(_registry())


def task_spec(name: str) -> TaskSpec:
    """The registration of task ``name``."""
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(task_names())}") from None


def paper_targets() -> dict[str, float]:
    """The paper's target accuracy per task."""
    return {name: spec.target_accuracy for name, spec in _registry().items()}


def get_task(name: str) -> Task:
    """Return the task called ``name``."""
    return task_spec(name).load()


def parse_run_config(
    run_config: Mapping[str, object], *, ignore: tuple[str, ...] = ()
) -> ExperimentConfig:
    """``protocol.config.parse_config`` with the registered task names: how the project parses."""
    return parse_config(run_config, tasks=task_names(), ignore=ignore)


def target_accuracy(config: ExperimentConfig) -> float:
    """The target accuracy in force: the configured ``target-accuracy``, or the paper's (0)."""
    return config.target_accuracy or task_spec(config.task).target_accuracy
