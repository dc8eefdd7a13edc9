"""MNIST digit classification: the paper's 2NN and CNN."""

from __future__ import annotations

from tasks.base import Task
from tasks.registry import register


def _load(name: str) -> Task:
    from tasks.mnist.task import MnistTask

    return MnistTask(name)


# The paper's targets (section 3): 97% for the 2NN, 99% for the CNN.
register("mnist-2nn", target_accuracy=0.97, load=lambda: _load("mnist-2nn"))
register("mnist-cnn", target_accuracy=0.99, load=lambda: _load("mnist-cnn"))
