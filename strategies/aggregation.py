"""The FedAvg update: w_{t+1} = sum_k (n_k / m_t) w^k_{t+1}, m_t = sum_k n_k.

The sum runs over the clients whose replies were accepted in this round only
(the paper's erratum 4: normalise over the sampled clients, not all K).

``WeightedMean`` folds updates in one at a time, so peak memory is one model
plus one accumulator whatever the number of clients m; ``weighted_average`` is
the batch form used by tests and simple callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

ArrayDict = Mapping[str, NDArray[np.generic]]


class WeightedMean:
    """Running weighted mean of named arrays (float64 accumulators).

    Accumulates ``n_k * w_k`` and ``n_k``; ``result()`` divides once at the
    end and casts back to each array's original dtype.
    """

    def __init__(self) -> None:
        self._sums: dict[str, NDArray[np.float64]] = {}
        self._scratch: dict[str, NDArray[np.float64]] = {}
        self._dtypes: dict[str, np.dtype[np.generic]] = {}
        self._total_weight = 0.0
        self.count = 0

    @property
    def total_weight(self) -> float:
        """m_t, the sum of the weights folded in so far."""
        return self._total_weight

    def add(self, arrays: ArrayDict, weight: float) -> None:
        """Fold in one client's arrays with weight n_k (> 0)."""
        if not weight > 0:
            raise ValueError(f"weight n_k must be positive, got {weight}")
        if self.count and set(arrays) != set(self._sums):
            raise ValueError(
                f"array names differ from the first update: {sorted(arrays)} "
                f"vs {sorted(self._sums)}"
            )
        for name, value in arrays.items():
            if name not in self._sums:
                self._sums[name] = np.zeros(value.shape, dtype=np.float64)
                self._scratch[name] = np.empty(value.shape, dtype=np.float64)
                self._dtypes[name] = value.dtype
            elif value.shape != self._sums[name].shape:
                raise ValueError(
                    f"array {name!r} has shape {value.shape}, expected {self._sums[name].shape}"
                )
            # Into a reused float64 buffer: no allocation per update, whatever m is.
            scratch = self._scratch[name]
            np.multiply(value, weight, out=scratch, dtype=np.float64, casting="unsafe")
            self._sums[name] += scratch
        self._total_weight += float(weight)
        self.count += 1

    def result(self) -> dict[str, NDArray[np.generic]]:
        """Return sum_k (n_k / m_t) w_k for every array name."""
        if self.count == 0:
            raise ValueError("no update was added")
        return {
            name: (total / self._total_weight).astype(self._dtypes[name])
            for name, total in self._sums.items()
        }


def weighted_average(
    updates: Sequence[ArrayDict], weights: Sequence[float]
) -> dict[str, NDArray[np.generic]]:
    """Return the n_k-weighted average of ``updates`` (one dict per client)."""
    if len(updates) != len(weights):
        raise ValueError(f"{len(updates)} updates but {len(weights)} weights")
    mean = WeightedMean()
    for arrays, weight in zip(updates, weights, strict=True):
        mean.add(arrays, weight)
    return mean.result()
