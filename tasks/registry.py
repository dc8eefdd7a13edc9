"""Look a task up by the run config's ``task`` name."""

from __future__ import annotations

from tasks.base import Task


def get_task(name: str) -> Task:
    """Return the task called ``name`` (see ``server.config.KNOWN_TASKS``)."""
    if name in ("mnist-2nn", "mnist-cnn"):
        from tasks.mnist.task import MnistTask

        return MnistTask(name)
    if name == "shakespeare-lstm":
        from tasks.shakespeare.task import ShakespeareTask

        return ShakespeareTask()
    raise KeyError(f"unknown task {name!r}")
