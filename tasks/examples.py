"""Example sets: what a client trains on and what the server evaluates on.

An ``ExampleSet`` hands out batches by index, so MNIST (tensors in memory)
and Shakespeare (80-character windows cut on demand) train through the same
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
