"""Splitting a training set across K clients, the paper's two ways (section 3).

Pure functions of the labels (or the size) and a seed; each returns one index
array per client.

- ``iid_partition``: shuffle, then K equal parts (600 each for MNIST, K=100).
- ``pathological_partition``: the paper's non-IID split. Sort by label, cut
  into 2K shards of n/(2K) examples, give each client 2 shards. Deviation,
  stated: the paper says "most clients will only have examples of two digits";
  a shard cut across a label boundary holds two labels, and pairing it with
  another such shard could give a client 3 or 4. We pair each mixed shard
  with a shard of one of its own labels (at random among those), and the rest
  at random, so every client holds at most 2 labels and every example is used
  exactly once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IndexArray = NDArray[np.int64]


def iid_partition(num_examples: int, num_partitions: int, seed: int) -> list[IndexArray]:
    """Shuffle ``range(num_examples)`` and split it into near-equal parts."""
    if not 1 <= num_partitions <= num_examples:
        raise ValueError(f"cannot split {num_examples} examples into {num_partitions} parts")
    order = np.random.default_rng(seed).permutation(num_examples).astype(np.int64)
    return [np.sort(part) for part in np.array_split(order, num_partitions)]


def pathological_partition(
    labels: NDArray[np.integer],
    num_partitions: int,
    seed: int,
    *,
    shards_per_partition: int = 2,
) -> list[IndexArray]:
    """The paper's pathological non-IID split (see the module docstring).

    ``len(labels) // (shards_per_partition * num_partitions)`` examples go in
    each shard; the remainder (none for MNIST with K=100) is left out.
    """
    num_shards = shards_per_partition * num_partitions
    shard_size = len(labels) // num_shards
    if shard_size == 0:
        raise ValueError(f"{len(labels)} examples cannot fill {num_shards} shards")
    rng = np.random.default_rng(seed)
    # Shuffle first so that the stable sort leaves a random order within each label.
    shuffled = rng.permutation(len(labels))
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    shards = [
        by_label[i * shard_size : (i + 1) * shard_size].astype(np.int64) for i in range(num_shards)
    ]
    shard_labels = [frozenset(np.unique(labels[s]).tolist()) for s in shards]

    # Mixed shards pick their partners first, while they still have choices.
    order = sorted(rng.permutation(num_shards).tolist(), key=lambda s: -len(shard_labels[s]))
    unpaired = set(range(num_shards))
    groups: list[list[int]] = []
    for shard in order:
        if shard not in unpaired:
            continue
        unpaired.discard(shard)
        group, group_labels = [shard], set(shard_labels[shard])
        for _ in range(shards_per_partition - 1):
            candidates = sorted(
                t for t in unpaired if len(group_labels | shard_labels[t]) <= shards_per_partition
            ) or sorted(unpaired)  # no label-respecting partner left: take any
            partner = candidates[int(rng.integers(len(candidates)))]
            unpaired.discard(partner)
            group.append(partner)
            group_labels |= shard_labels[partner]
        groups.append(group)
    rng.shuffle(groups)  # type: ignore[arg-type]
    return [np.sort(np.concatenate([shards[s] for s in group])) for group in groups]
