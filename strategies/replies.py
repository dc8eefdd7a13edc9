"""Reading the clients' replies: validate each, fold the valid ones in, count the rest.

``TrainFold`` is step 3 of Algorithm 1 done one reply at a time:
w_{t+1} = sum_k (n_k / m_t) w^k_{t+1}, m_t = sum_k n_k over the replies that
pass validation. A reply is rejected, never averaged in, when it carries an
error, repeats a node, lacks a positive integer n_k (or exceeds the plausible
maximum), has a train loss that is not a finite number, has arrays of other names, shapes or
dtypes, holds NaN/Inf, or moves the model further than the norm bound. Each
folded reply is dropped at once: memory is the accumulator, not m models.

A reply without a train loss (a ClientApp of another project) is accepted:
its loss is just not recorded. The loss is read from ``train-loss`` or from
Flower's quickstart key ``train_loss``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from logging import WARNING
from typing import TypeVar

from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log

from protocol.messages import (
    ARRAYS_KEY,
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    FLOWER_TRAIN_LOSS_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)
from protocol.packing import PackingError, unpack
from strategies.aggregation import WeightedMean
from strategies.records import NamedArrays
from strategies.validation import ArraySpec, check_arrays, check_num_examples, spec_of


@dataclass(frozen=True)
class TrainReply:
    """A valid train reply: w^k_{t+1}, n_k and the client's mean training loss (if sent)."""

    arrays: NamedArrays
    num_examples: int
    loss: float | None


R = TypeVar("R", ArrayRecord, MetricRecord)


def one_record(content: RecordDict, key: str, kind: type[R]) -> R | None:
    """The record ``key`` of ``kind``, else the reply's only record of that kind (as Flower reads).

    Item access, not Flower's typed views (``content.array_records``): those put the
    reply in a reference cycle, which would keep its arrays until the cyclic GC runs.
    """
    record = content.get(key)
    if isinstance(record, kind):
        return record
    found = [value for value in content.values() if isinstance(value, kind)]
    return found[0] if len(found) == 1 else None


def parse_train_reply(
    reply: Message,
    expected: Mapping[str, ArraySpec],
    reference: NamedArrays,
    *,
    max_examples: int | None = None,
    max_update_norm: float | None = None,
    arrays_key: str = ARRAYS_KEY,
    weight_key: str = NUM_EXAMPLES_KEY,
) -> TrainReply | str:
    """Return the reply's update, or why it cannot enter the average.

    The weights are the ArrayRecord ``arrays_key`` (or the reply's only one), n_k
    is the metric ``weight_key`` of the MetricRecord ``metrics`` (or the only one).
    """
    if reply.has_error():
        reason = (reply.error.reason or "").strip().splitlines()
        return f"error code {reply.error.code}: {reason[-1] if reason else ''}"[:500]
    content = reply.content
    record = one_record(content, arrays_key, ArrayRecord)
    if record is None:
        return f"no ArrayRecord {arrays_key!r}"
    metrics = one_record(content, METRICS_KEY, MetricRecord)
    if metrics is None:
        return f"no MetricRecord {METRICS_KEY!r}"
    num_examples = metrics.get(weight_key)
    problem = check_num_examples(num_examples, max_examples=max_examples, key=weight_key)
    if problem is not None:
        return problem
    loss_key = next((k for k in (TRAIN_LOSS_KEY, FLOWER_TRAIN_LOSS_KEY) if k in metrics), None)
    loss = metrics.get(loss_key) if loss_key is not None else None
    if loss_key is not None:
        problem = check_finite(loss_key, loss)
        if problem is not None:
            return problem
    try:
        arrays = unpack(record)
    except PackingError as error:
        return f"arrays: {error}"
    problem = check_arrays(arrays, expected, reference=reference, max_update_norm=max_update_norm)
    if problem is not None:
        return problem
    return TrainReply(
        arrays,
        int(num_examples),  # type: ignore[arg-type]
        None if loss is None else float(loss),  # type: ignore[arg-type]
    )


@dataclass
class TrainFold:
    """The running n_k-weighted sum of one round's valid train replies.

    ``add`` takes each reply as it arrives; ``sender`` names the node it
    answers for. Counters and rejection reasons are what the round record
    reports.
    """

    global_arrays: NamedArrays
    max_examples: int | None = None
    max_update_norm: float | None = None
    server_round: int = 0
    arrays_key: str = ARRAYS_KEY
    weight_key: str = NUM_EXAMPLES_KEY
    replied: int = 0
    rejections: list[str] = field(default_factory=list)
    bytes_up: int = 0
    _mean: WeightedMean = field(default_factory=WeightedMean)
    _loss_sum: float = 0.0
    _loss_weight: float = 0.0
    _seen: set[int] = field(default_factory=set)
    _expected: dict[str, ArraySpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._expected = spec_of(self.global_arrays)

    def add(self, reply: Message, sender: int) -> None:
        """Validate ``reply`` and fold it in, or count and log why not."""
        self.replied += 1
        if reply.has_content():
            arrays_record = one_record(reply.content, self.arrays_key, ArrayRecord)
            if arrays_record is not None:
                self.bytes_up += arrays_record.count_bytes()
        if sender in self._seen:
            parsed: TrainReply | str = "duplicate reply"
        else:
            self._seen.add(sender)
            parsed = parse_train_reply(
                reply,
                self._expected,
                self.global_arrays,
                max_examples=self.max_examples,
                max_update_norm=self.max_update_norm,
                arrays_key=self.arrays_key,
                weight_key=self.weight_key,
            )
        if isinstance(parsed, str):
            self.rejections.append(f"node {sender}: {parsed}")
            log(
                WARNING,
                "round %d: rejected the reply of node %d: %s",
                self.server_round,
                sender,
                parsed,
            )
            return
        self._mean.add(parsed.arrays, parsed.num_examples)
        if parsed.loss is not None:
            self._loss_sum += parsed.loss * parsed.num_examples
            self._loss_weight += parsed.num_examples

    @property
    def valid(self) -> int:
        """Replies folded in."""
        return self._mean.count

    @property
    def examples(self) -> int:
        """m_t, the examples behind the folded replies."""
        return int(self._mean.total_weight)

    @property
    def train_loss(self) -> float | None:
        """The n_k-weighted mean of the training losses sent; None when no reply sent one."""
        return self._loss_sum / self._loss_weight if self._loss_weight else None

    def result(self) -> NamedArrays:
        """w_{t+1}: the n_k-weighted mean of the folded updates."""
        return self._mean.result()


def parse_evaluate_reply(
    reply: Message, *, weight_key: str = NUM_EXAMPLES_KEY
) -> tuple[int, float, float] | str:
    """(n_k, loss, accuracy) of a federated-evaluation reply, or why it is unusable."""
    if reply.has_error():
        return f"error code {reply.error.code}"
    metrics = one_record(reply.content, METRICS_KEY, MetricRecord)
    if metrics is None:
        return f"no MetricRecord {METRICS_KEY!r}"
    n, loss, accuracy = (
        metrics.get(weight_key),
        metrics.get(EVAL_LOSS_KEY),
        metrics.get(EVAL_ACCURACY_KEY),
    )
    problem = (
        check_num_examples(n, key=weight_key)
        or check_finite(EVAL_LOSS_KEY, loss)
        or check_finite(EVAL_ACCURACY_KEY, accuracy)
    )
    if problem is not None:
        return problem
    return int(n), float(loss), float(accuracy)  # type: ignore[arg-type]


def check_finite(key: str, value: object) -> str | None:
    """Why ``value`` is not a finite number (for a reply's metric ``key``), or None."""
    if value is None:
        return f"no {key}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{key} must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"{key} is {value!r} (NaN or Inf)"
    return None
