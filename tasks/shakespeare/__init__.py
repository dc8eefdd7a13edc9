"""Shakespeare next-character prediction: the paper's character LSTM, one client per role."""

from __future__ import annotations

from tasks.base import Task
from tasks.registry import register


def _load() -> Task:
    from tasks.shakespeare.task import ShakespeareTask

    return ShakespeareTask()


# The paper's target (section 3): 54% next-character accuracy.
register("shakespeare-lstm", target_accuracy=0.54, load=_load)
