from pathlib import Path

import numpy as np
import pytest

from tasks.mnist.data import load_idx_directory
from tasks.partitioning import iid_partition, pathological_partition


def test_iid_gives_k_equal_parts_using_every_example_once() -> None:
    parts = iid_partition(60000, 100, seed=0)
    assert [len(p) for p in parts] == [600] * 100
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(60000))


def test_partitions_are_reproducible_and_seeded() -> None:
    labels = np.repeat(np.arange(10), 600)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            pathological_partition(labels, 50, 1),
            pathological_partition(labels, 50, 1),
            strict=True,
        )
    )
    assert not np.array_equal(iid_partition(6000, 10, 1)[0], iid_partition(6000, 10, 2)[0])


def _check_pathological(labels: np.ndarray, parts: list[np.ndarray], size: int) -> None:
    assert [len(p) for p in parts] == [size] * len(parts)
    used = np.concatenate(parts)
    assert len(np.unique(used)) == len(used) == size * len(parts)  # every example at most once
    digits = [len(np.unique(labels[p])) for p in parts]
    assert max(digits) <= 2
    # "most clients will only have examples of two digits"
    assert sum(d == 2 for d in digits) >= 0.8 * len(parts)


def test_pathological_on_uneven_synthetic_labels() -> None:
    rng = np.random.default_rng(0)
    labels = rng.choice(
        10, size=6000, p=np.linspace(0.07, 0.13, 10)
    )  # every class larger than a shard
    parts = pathological_partition(labels, 10, seed=3)
    _check_pathological(labels, parts, 600)


def test_pathological_on_real_mnist_is_100_clients_of_600_with_at_most_2_digits(
    real_mnist: Path,
) -> None:
    labels = load_idx_directory(real_mnist).train_labels
    parts = pathological_partition(labels, 100, seed=0)
    _check_pathological(labels, parts, 600)
    assert len(np.concatenate(parts)) == 60000  # every example used exactly once


def test_too_few_examples() -> None:
    with pytest.raises(ValueError):
        pathological_partition(np.zeros(3, dtype=int), 2, seed=0)


def test_noniid_clients_hold_two_shards_of_the_label_sorted_data() -> None:
    """Sort by label, 2K shards of n/(2K), two shards per client (offline, synthetic labels).

    60 examples per digit and shards of 30 align shards with digits, so each
    client holds 30 + 30 of two digits or 60 of one, never anything else.
    """
    rng = np.random.default_rng(7)
    labels = rng.permutation(np.repeat(np.arange(10), 60))
    parts = pathological_partition(labels, 10, seed=0)
    assert [len(p) for p in parts] == [60] * 10
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(600))
    counts = [sorted(np.unique(labels[p], return_counts=True)[1].tolist()) for p in parts]
    assert all(c in ([30, 30], [60]) for c in counts)
    assert sum(c == [30, 30] for c in counts) >= 5  # shards are paired at random, not in order
    # Unlike IID, where every client sees (nearly) every digit.
    iid_digits = [len(np.unique(labels[p])) for p in iid_partition(600, 10, seed=0)]
    assert min(iid_digits) >= 8
