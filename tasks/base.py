"""What a task provides: a model and the data clients and the server use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tasks.examples import ExampleSet

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from protocol.config import ExperimentConfig


@dataclass(frozen=True)
class ClientData:
    """One client's data: its training examples (n_k = len(train)) and a local test split."""

    train: ExampleSet
    test: ExampleSet


class Task(Protocol):
    """A model and its data, looked up by the run config's ``task`` name."""

    @property
    def name(self) -> str:
        """The run config's ``task`` value."""
        ...

    @property
    def num_classes(self) -> int:
        """Size of the softmax output."""
        ...

    def build_model(self) -> nn.Module:
        """Return a freshly initialised model (seed torch before calling)."""
        ...

    def client_data(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> ClientData:
        """Return the data of client ``partition_id`` out of ``num_partitions``."""
        ...

    def central_test(self, config: ExperimentConfig) -> ExampleSet:
        """Return the test set the server evaluates the global model on."""
        ...


@runtime_checkable
class NodeDataTask(Protocol):
    """A task whose clients' data can be written to, and read from, a node's own directory.

    ``client_data(config, i, K)`` must equal
    ``client_data_from_arrays(client_arrays(config, i, K), config)``: that is what makes
    a deployed node with a data-path train on the same examples as partition
    ``i`` in simulation.
    """

    @property
    def dataset(self) -> str:
        """The data set's name (tasks sharing data share it), recorded in the manifest."""
        ...

    def client_arrays(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> dict[str, np.ndarray]:
        """Return the raw arrays of client ``partition_id`` out of ``num_partitions``."""
        ...

    def client_data_from_arrays(
        self, arrays: Mapping[str, np.ndarray], config: ExperimentConfig
    ) -> ClientData:
        """Turn ``client_arrays`` output back into the client's data (as ``config`` says)."""
        ...
