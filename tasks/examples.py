"""Example sets: what a client trains on and what the server evaluates on.

An ``ExampleSet`` hands out batches by index, so MNIST (tensors in memory)
and Shakespeare (lines, padded per batch) train through the same
loop without materialising every example up front.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray


class ExampleSet(Protocol):
    """A finite set of (input, label) examples addressable by index."""

    def __len__(self) -> int: ...

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the inputs and labels of the examples at ``indices``."""
        ...


class TensorExamples:
    """Examples held as two tensors of equal length."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        self.inputs = inputs
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        return self.inputs[index], self.labels[index]

    def subset(self, indices: NDArray[np.int64]) -> TensorExamples:
        """Return the examples at ``indices`` as a new set."""
        return TensorExamples(*self.batch(indices))


class IndexedExamples:
    """The examples of ``base`` at ``indices``, gathered only when a batch is asked for."""

    def __init__(self, base: ExampleSet, indices: NDArray[np.int64]) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.base.batch(self.indices[np.asarray(indices, dtype=np.int64)])


def sample_examples(examples: ExampleSet, max_examples: int, seed: int) -> ExampleSet:
    """A uniform random sample of ``max_examples`` examples, without replacement.

    ``max_examples`` = 0, or at least ``len(examples)``, returns ``examples``
    itself. The sample is a function of ``seed`` alone, so every round of a run
    (and every run with that seed) is scored on the same examples.
    """
    if max_examples == 0 or max_examples >= len(examples):
        return examples
    chosen = np.random.default_rng(seed).choice(len(examples), size=max_examples, replace=False)
    return IndexedExamples(examples, np.sort(chosen))
