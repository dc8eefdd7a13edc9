"""When a run ends before its last round: the target is reached, or the run no longer learns.

Both rules live here and the round runner (``server.rounds``) asks them once
per round, after the round is recorded, so the round that ends a run is
written, shown and tracked first.

Reaching the target (``stop-at-target``): the run ends "completed" at the
first evaluated round whose central test accuracy reaches ``target``; the
paper's rounds-to-target is read off the curve up to there.

Not learning: FedAvg keeps w_{t+1} = w_t in a round with fewer than
``min-replies`` valid replies (``strategies.fedavg``). One such round is
weather; many in a row mean that every client fails the same way (data
prepared for another partition, a wrong path, a crashing ClientApp), and a
run that went on would end "completed" with an untrained model.
``StallGuard`` raises ``NoUpdateError`` once ``max-rounds-without-update``
consecutive rounds left the model unchanged, its message summarising why the
replies were rejected.
"""

from __future__ import annotations

import re
from collections import Counter

from server.round_record import RoundRecord

_NODE_PREFIX = re.compile(r"^node -?\d+: ")
_NUMBER = re.compile(r"\d+")


class NoUpdateError(RuntimeError):
    """Consecutive rounds without a valid update: the run cannot learn."""


def summarise_rejections(records: list[RoundRecord], *, most: int = 3) -> str:
    """The distinct rejection reasons over ``records``, most frequent first, with counts.

    Reasons that differ only in their numbers (round, partition, a path's index) count
    as one; the first one seen stands for them.
    """
    reasons: Counter[str] = Counter()
    example: dict[str, str] = {}
    for reason in (_NODE_PREFIX.sub("", r) for rec in records for r in rec.rejections):
        kind = _NUMBER.sub("#", reason)
        reasons[kind] += 1
        example.setdefault(kind, reason)
    replied = sum(rec.clients_replied for rec in records)
    sampled = sum(rec.clients_sampled for rec in records)
    if not reasons:
        return f"{replied} of {sampled} sampled clients replied, none rejected"
    parts = [f"{count}x {example[kind]}" for kind, count in reasons.most_common(most)]
    if len(reasons) > most:
        parts.append(f"and {len(reasons) - most} other reason(s)")
    rejected = sum(reasons.values())
    return f"{rejected} of {sampled} sampled clients' replies rejected: " + "; ".join(parts)


class StallGuard:
    """Raise ``NoUpdateError`` after ``max_rounds`` consecutive rounds without an update.

    ``max_rounds = 0`` turns the guard off. Round 0 (the initial evaluation)
    does not count.
    """

    def __init__(self, max_rounds: int) -> None:
        if max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
        self.max_rounds = max_rounds
        self.stalled: list[RoundRecord] = []

    def __call__(self, record: RoundRecord) -> None:
        if record.round == 0 or self.max_rounds == 0:
            return
        if record.model_updated:
            self.stalled = []
            return
        self.stalled.append(record)
        if len(self.stalled) >= self.max_rounds:
            first, last = self.stalled[0].round, self.stalled[-1].round
            raise NoUpdateError(
                f"no valid update in {len(self.stalled)} consecutive rounds "
                f"({first}-{last}; max-rounds-without-update={self.max_rounds}): "
                f"{summarise_rejections(self.stalled)}"
            )


class Stopping:
    """The run's stop rules: the target (when ``stop_at_target``) and the stall guard.

    ``after(record)`` returns True when the run should end now at the target,
    and raises ``NoUpdateError`` when it cannot learn.
    """

    def __init__(
        self,
        *,
        target_accuracy: float | None = None,
        stop_at_target: bool = False,
        max_rounds_without_update: int = 0,
    ) -> None:
        if stop_at_target and target_accuracy is None:
            raise ValueError("stop_at_target needs a target_accuracy")
        self.target_accuracy = target_accuracy
        self.stop_at_target = stop_at_target
        self.stall = StallGuard(max_rounds_without_update)

    def after(self, record: RoundRecord) -> bool:
        """Whether the run ends after ``record``'s round; raises ``NoUpdateError`` on a stall."""
        self.stall(record)
        return (
            self.stop_at_target
            and record.round > 0
            and self.target_accuracy is not None
            and record.test_accuracy is not None
            and record.test_accuracy >= self.target_accuracy
        )
