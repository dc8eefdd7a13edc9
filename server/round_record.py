"""One row per round: what the server did and measured (the row behind ``metrics.jsonl``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flwr.app import MetricRecord
from flwr.serverapp.strategy import Result

from protocol.messages import (
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)


@dataclass
class RoundRecord:
    """What happened in one round t (round 0 is the evaluation of w_0)."""

    round: int
    clients_available: int = 0
    clients_sampled: int = 0
    clients_replied: int = 0
    clients_rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    train_loss: float | None = None
    examples: int = 0
    lr: float | None = None
    bytes_down: int = 0
    bytes_up: int = 0
    test_loss: float | None = None
    test_accuracy: float | None = None
    eval_loss: float | None = None
    eval_accuracy: float | None = None
    seconds: float = 0.0
    # Where the round's time went: sending w_t until the last reply (dispatch,
    # ClientUpdate, transport), folding the replies in, the central evaluation.
    clients_seconds: float = 0.0
    aggregate_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    model_updated: bool = False


def result_of(records: Mapping[int, RoundRecord]) -> Result:
    """Flower's ``Result`` metrics, by absolute round, from the round records."""
    result = Result()
    for r, rec in sorted(records.items()):
        if rec.train_loss is not None:
            result.train_metrics_clientapp[r] = MetricRecord(
                {TRAIN_LOSS_KEY: rec.train_loss, NUM_EXAMPLES_KEY: rec.examples}
            )
        if rec.eval_accuracy is not None and rec.eval_loss is not None:
            result.evaluate_metrics_clientapp[r] = MetricRecord(
                {EVAL_ACCURACY_KEY: rec.eval_accuracy, EVAL_LOSS_KEY: rec.eval_loss}
            )
        if rec.test_accuracy is not None and rec.test_loss is not None:
            result.evaluate_metrics_serverapp[r] = MetricRecord(
                {"accuracy": rec.test_accuracy, "loss": rec.test_loss}
            )
    return result
