"""The MNIST tasks: ``mnist-2nn`` and ``mnist-cnn`` (the paper's section 3).

Pixels are scaled to [0, 1] and, by default, standardised with the training
set's mean and standard deviation (0.1307, 0.3081); run config
``input-scaling = "unit"`` keeps them in [0, 1]. The paper does not state its
preprocessing (docs/reproduction.md measures what the choice does to rounds to
target). Each client's local test split is its share of the 10,000 test
images, split IID into K parts whatever the training partition; the paper
evaluates on the whole test set, which the server does centrally.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from protocol.config import INPUT_SCALINGS, ExperimentConfig
from tasks.base import ClientData
from tasks.examples import TensorExamples
from tasks.mnist.data import load_mnist
from tasks.mnist.models import Mnist2NN, MnistCNN
from tasks.partitioning import iid_partition, pathological_partition

MEAN, STD = 0.1307, 0.3081


def to_examples(
    images: np.ndarray, labels: np.ndarray, scaling: str = "standardised"
) -> TensorExamples:
    """uint8 images into float32 tensors of shape (n, 28, 28), in [0, 1] or standardised."""
    if scaling not in INPUT_SCALINGS:
        raise ValueError(f"input scaling {scaling!r} is not one of {INPUT_SCALINGS}")
    inputs = torch.from_numpy(images).float() / 255.0
    if scaling == "standardised":
        inputs = (inputs - MEAN) / STD
    return TensorExamples(inputs, torch.from_numpy(labels).long())


@functools.lru_cache(maxsize=4)
def _central_test(data_dir: str, scaling: str) -> TensorExamples:
    arrays = load_mnist(data_dir)
    return to_examples(arrays.test_images, arrays.test_labels, scaling)


@functools.lru_cache(maxsize=8)
def partition_indices(
    data_dir: str, partition: str, num_partitions: int, seed: int
) -> tuple[np.ndarray, ...]:
    """Training-set indices of every client; computed once per process."""
    arrays = load_mnist(data_dir)
    if partition == "iid":
        parts = iid_partition(len(arrays.train_labels), num_partitions, seed)
    else:
        parts = pathological_partition(arrays.train_labels, num_partitions, seed)
    return tuple(parts)


@dataclass(frozen=True)
class MnistTask:
    """One of the paper's two MNIST models on the MNIST data."""

    name: str
    num_classes: int = 10

    def build_model(self) -> nn.Module:
        return Mnist2NN() if self.name == "mnist-2nn" else MnistCNN()

    @property
    def dataset(self) -> str:
        """Both MNIST models train on the same data: one node directory serves both."""
        return "mnist"

    def client_arrays(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> dict[str, np.ndarray]:
        """Client ``partition_id``'s raw examples (uint8 images, int64 labels).

        What ``python -m clients.prepare_data`` writes to a node's data-path;
        ``client_data`` is built from exactly these arrays, so a node holding
        them trains on the same examples as that partition in simulation.
        """
        if not 0 <= partition_id < num_partitions:
            raise ValueError(f"partition-id {partition_id} is not in [0, {num_partitions})")
        arrays = load_mnist(config.data_dir)
        seed = config.seeds["partition"]
        parts = partition_indices(config.data_dir, config.partition, num_partitions, seed)
        test_part = iid_partition(len(arrays.test_labels), num_partitions, seed)[partition_id]
        train_part = parts[partition_id]
        return {
            "train_images": arrays.train_images[train_part],
            "train_labels": arrays.train_labels[train_part],
            "test_images": arrays.test_images[test_part],
            "test_labels": arrays.test_labels[test_part],
        }

    def client_data_from_arrays(
        self, arrays: Mapping[str, np.ndarray], config: ExperimentConfig
    ) -> ClientData:
        """Scale a client's raw arrays (from ``client_arrays`` or a data-path) as configured."""
        scaling = config.input_scaling
        return ClientData(
            train=to_examples(arrays["train_images"], arrays["train_labels"], scaling),
            test=to_examples(arrays["test_images"], arrays["test_labels"], scaling),
        )

    def client_data(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> ClientData:
        return self.client_data_from_arrays(
            self.client_arrays(config, partition_id, num_partitions), config
        )

    def central_test(self, config: ExperimentConfig) -> TensorExamples:
        return _central_test(config.data_dir, config.input_scaling)
