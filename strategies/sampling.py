"""Client sampling of Algorithm 1: S_t, a random set of m = max(C*K, 1) clients.

Pure functions. The random generator is derived from (seed, round) so that the
same seed picks the same clients in every round, whatever happened in earlier
rounds (a resumed or replayed run samples exactly as the original one did).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np


def clients_per_round(fraction: float, num_clients: int) -> int:
    """Return m = max(floor(C * K), 1), the number of clients sampled per round.

    The paper writes ``max(C * K, 1)``; C*K is not always an integer, so we
    floor it (C=0.1, K=100 gives 10; C=0.0 gives the paper's single client).
    m never exceeds K.

    Args:
        fraction: C, in [0, 1].
        num_clients: K, the number of available clients (>= 1).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction C must be in [0, 1], got {fraction}")
    if num_clients < 1:
        raise ValueError(f"need at least one client, got K={num_clients}")
    # A tiny epsilon keeps 0.29*100 = 28.999999999999996 from flooring to 28.
    m = math.floor(fraction * num_clients + 1e-9)
    return min(max(m, 1), num_clients)


def round_rng(seed: int, server_round: int) -> np.random.Generator:
    """Return the generator for one round, a pure function of (seed, round)."""
    return np.random.default_rng([seed, server_round])


def sample_clients(
    node_ids: Iterable[int],
    num_sampled: int,
    *,
    seed: int,
    server_round: int,
    order: Callable[[list[int]], list[int]] | None = None,
) -> list[int]:
    """Sample ``num_sampled`` distinct node ids uniformly without replacement.

    The ids are sorted before sampling so the result does not depend on the
    order in which the Grid lists them: by ``order`` when given (a key per
    node, e.g. its partition id; see ``strategies.node_order``), else by id.
    """
    population = sorted(set(int(n) for n in node_ids))
    if order is not None:
        population = order(population)
    if not 1 <= num_sampled <= len(population):
        raise ValueError(f"cannot sample {num_sampled} clients from {len(population)} available")
    chosen = round_rng(seed, server_round).choice(len(population), size=num_sampled, replace=False)
    return [population[i] for i in sorted(chosen.tolist())]
