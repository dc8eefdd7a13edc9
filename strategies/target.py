"""Rounds-to-target, measured the paper's way (section 3, "rounds to target").

The paper makes each learning curve monotone (the best test accuracy seen so
far) and finds where it first reaches the target, linearly interpolating
between the evaluated rounds. So a curve evaluated at rounds 10 and 20 with
best-so-far accuracies 0.96 and 0.98 reaches 0.97 at round 15.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise


def best_so_far(accuracies: Sequence[float]) -> list[float]:
    """Return the running maximum of ``accuracies``."""
    curve: list[float] = []
    best = float("-inf")
    for value in accuracies:
        best = max(best, value)
        curve.append(best)
    return curve


def rounds_to_target(
    rounds: Sequence[int], accuracies: Sequence[float], target: float
) -> float | None:
    """Return the (fractional) round at which the best-so-far curve reaches ``target``.

    Args:
        rounds: the evaluated rounds, strictly increasing (round 0 is the
            initial model).
        accuracies: test accuracy at each of those rounds.
        target: the accuracy to reach, in [0, 1].

    Returns:
        None when the target is never reached; the first round when it is
        reached already there; otherwise the linear interpolation between the
        last evaluated round below the target and the first one at or above it.
    """
    if len(rounds) != len(accuracies):
        raise ValueError(f"{len(rounds)} rounds but {len(accuracies)} accuracies")
    if any(b <= a for a, b in pairwise(rounds)):
        raise ValueError("rounds must be strictly increasing")
    curve = best_so_far(accuracies)
    for i, value in enumerate(curve):
        if value < target:
            continue
        if i == 0:
            return float(rounds[0])
        r0, r1 = rounds[i - 1], rounds[i]
        a0, a1 = curve[i - 1], value
        return r0 + (target - a0) / (a1 - a0) * (r1 - r0)
    return None
