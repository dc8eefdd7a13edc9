"""The ``bench-wide`` task: a 784-16000-10 MLP (12.7 M parameters, 50.9 MB float32).

Benchmark-only (see ``tasks.bench``). Every client holds two synthetic
examples drawn from (partition seed, partition id), so the real ClientApp
trains one cheap step; the central test set is 20 synthetic examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from protocol.config import ExperimentConfig
from tasks.base import ClientData
from tasks.examples import TensorExamples

WIDTH = 16_000
EXAMPLES_PER_CLIENT = 2
TEST_EXAMPLES = 20


def _synthetic(seed: list[int], n: int) -> TensorExamples:
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(rng.standard_normal((n, 28, 28), dtype=np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, n))
    return TensorExamples(inputs, labels)


@dataclass(frozen=True)
class WideBenchTask:
    """A wide MLP whose size, not its training, is the point."""

    name: str = "bench-wide"
    num_classes: int = 10

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(784, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))

    def client_data(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> ClientData:
        if not 0 <= partition_id < num_partitions:
            raise ValueError(f"partition-id {partition_id} is not in [0, {num_partitions})")
        seed = config.seeds["partition"]
        return ClientData(
            train=_synthetic([seed, partition_id, 0], EXAMPLES_PER_CLIENT),
            test=_synthetic([seed, partition_id, 1], EXAMPLES_PER_CLIENT),
        )

    def central_test(self, config: ExperimentConfig) -> TensorExamples:
        return _synthetic([config.seeds["partition"], 2**31], TEST_EXAMPLES)
