"""The round runner: drives any Flower Strategy through the rounds of one run.

One round t, the same steps as Flower's own ``Strategy.start``, in one place:

1. configure: ``strategy.configure_train(t, w_t, config, grid)``; the round's
   config (E, B, eta_t, ``server-round``) comes from ``train_config(t)``, so a
   Flower strategy's clients get the paper's per-round values too;
2. send and aggregate: the messages go out through the transport
   (``server.transport.TransportGrid``); ``strategy.aggregate_train`` reads
   the replies as they are pulled, within ``timeout``, when it reads them once
   (``reads_replies_once``, ours), and as a list otherwise (a Flower wrapper
   reads them twice: DP clipping clips them, then hands them on);
3. evaluate: federated (``configure_evaluate`` / ``aggregate_evaluate``, when
   the strategy asks anyone), then central (``evaluate_fn(t, w_{t+1})``);
4. record: one ``RoundRecord``, built here alone from what the hooks returned
   and what the transport measured, goes to ``on_round_end`` (results files,
   checkpoints, trackers); then the stop rules (``server.stopping``): the
   target, and the stall guard that fails a run which no longer learns.

A resumed run starts at ``first_round`` > 1: sampling, eta_t and the records
use absolute rounds, so it repeats the uninterrupted run, and round 0 (the
evaluation of w_0) is not repeated. The result is Flower's ``Result``, by
absolute round, from the metrics the hooks returned, as Flower's loop builds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from logging import INFO

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from protocol.messages import (
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    FLOWER_TRAIN_LOSS_KEY,
    LR_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)
from server.round_record import RoundRecord
from server.stopping import Stopping
from server.transport import ReplyStream, TransportGrid
from strategies.fedavg import CLIENTS_REJECTED_KEY

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]
ConfigFn = Callable[[int], ConfigRecord]

# What a strategy's aggregate_evaluate calls its results: ours, then Flower's examples'.
_EVAL_LOSS_KEYS = (EVAL_LOSS_KEY, "eval_loss", "loss")
_EVAL_ACCURACY_KEYS = (EVAL_ACCURACY_KEY, "eval_acc", "eval_accuracy", "accuracy")


@dataclass
class RunOutcome:
    """What ``RoundRunner.run`` returns: Flower's Result, the records, and how it ended."""

    result: Result
    records: dict[int, RoundRecord] = field(default_factory=dict)
    stopped_early: bool = False


class RoundRunner:
    """Run ``strategy``'s rounds over ``grid`` (see the module).

    Args:
        strategy: any Flower ``Strategy``: ours, Flower's, or a wrapper.
        grid: the federation; wrapped in ``TransportGrid`` unless it is one.
        timeout: seconds a round waits for replies after sending.
        train_config: the config of round t's train instructions
            (default: empty; the strategy adds its own keys).
        evaluate_config: the config of round t's evaluate instructions.
        evaluate_fn: central evaluation, ``evaluate_fn(t, w_t)`` returns a
            MetricRecord with ``accuracy`` and ``loss``, or None to skip.
        on_round_end: called with each round's record once it is complete.
        stopping: the stop rules (default: none; every round runs).
    """

    def __init__(
        self,
        strategy: Strategy,
        grid: Grid,
        *,
        timeout: float = 3600.0,
        train_config: ConfigFn | None = None,
        evaluate_config: ConfigFn | None = None,
        evaluate_fn: EvaluateFn | None = None,
        on_round_end: Callable[[RoundRecord], None] | None = None,
        stopping: Stopping | None = None,
    ) -> None:
        self.strategy = strategy
        self.grid = grid if isinstance(grid, TransportGrid) else TransportGrid(grid)
        self.timeout = timeout
        self.train_config = train_config or _empty_config
        self.evaluate_config = evaluate_config or _empty_config
        self.evaluate_fn = evaluate_fn
        self.on_round_end = on_round_end
        self.stopping = stopping or Stopping()
        self.arrays = ArrayRecord()  # the global model w_t, once run() starts
        # Ours reads packed replies itself (strategies.replies), a copy fewer per reply;
        # any other strategy, or a wrapper, gets named arrays.
        self._named = not getattr(strategy, "reads_packed_replies", False)

    def run(
        self, initial_arrays: ArrayRecord, *, num_rounds: int, first_round: int = 1
    ) -> RunOutcome:
        """Run rounds ``first_round`` .. ``first_round + num_rounds - 1``."""
        if first_round < 1 or num_rounds < 0:
            raise ValueError(
                f"need first_round >= 1, num_rounds >= 0; got {first_round}, {num_rounds}"
            )
        self.strategy.summary()
        outcome = RunOutcome(result=Result())
        self.arrays = initial_arrays
        if first_round == 1:  # a resumed run evaluated its checkpoint's model before
            record = RoundRecord(round=0)
            self._evaluate_centrally(record, outcome.result)
            self._end(record, outcome)
        for t in range(first_round, first_round + num_rounds):
            record = self._round(t, outcome.result)
            self._end(record, outcome)
            if self.stopping.after(record):
                log(
                    INFO,
                    "round %d: target accuracy %s reached, stopping",
                    t,
                    self.stopping.target_accuracy,
                )
                outcome.stopped_early = True
                break
        outcome.result.arrays = self.arrays
        return outcome

    # ------------------------------------------------------------------ a round

    def _round(self, t: int, result: Result) -> RoundRecord:
        started = time.monotonic()
        messages = list(
            self.strategy.configure_train(t, self.arrays, self.train_config(t), self.grid)
        )
        record = RoundRecord(
            round=t,
            clients_available=len(list(self.grid.get_node_ids())),
            clients_sampled=len(messages),
            lr=_learning_rate(messages),
            bytes_down=_array_bytes(messages),
        )
        replies = self.grid.stream(messages, timeout=self.timeout, named=self._named)
        del messages
        tally = ReplyTally(replies)
        pushed = time.monotonic()
        new_arrays, metrics = self.strategy.aggregate_train(t, self._feed(tally))
        # Waiting for replies and folding them interleave: the fold's share is the rest.
        record.clients_seconds = replies.wait_seconds
        record.aggregate_seconds = time.monotonic() - pushed - replies.wait_seconds
        log(
            INFO,
            "round %d: %d replies pulled in %d polls, at most %d at once",
            t,
            tally.replies,
            replies.polls,
            replies.largest_pull,
        )
        self._record_train(record, tally, new_arrays, metrics)
        if metrics is not None:
            result.train_metrics_clientapp[t] = metrics
        if new_arrays is not None:
            self.arrays = new_arrays
        self._evaluate_federated(record, result)
        self._evaluate_centrally(record, result)
        record.seconds = time.monotonic() - started
        return record

    def _record_train(
        self,
        record: RoundRecord,
        tally: ReplyTally,
        new_arrays: ArrayRecord | None,
        metrics: MetricRecord | None,
    ) -> None:
        record.clients_replied, record.bytes_up = tally.replies, tally.bytes_up
        # A wrapper that drops the round before its strategy aggregates leaves no reasons.
        reported = None if metrics is None else _rejections_of(self.strategy, record.round)
        record.rejections = tally.errors if reported is None else reported
        rejected = _number(metrics, CLIENTS_REJECTED_KEY)
        record.clients_rejected = int(rejected) if rejected is not None else len(record.rejections)
        record.model_updated = new_arrays is not None
        if not record.model_updated:
            return
        examples = _number(metrics, NUM_EXAMPLES_KEY)  # Flower's FedAvg drops it: count
        record.examples = int(examples) if examples is not None else tally.examples
        record.train_loss = _first(metrics, (TRAIN_LOSS_KEY, FLOWER_TRAIN_LOSS_KEY))

    def _evaluate_federated(self, record: RoundRecord, result: Result) -> None:
        t = record.round
        messages = list(
            self.strategy.configure_evaluate(t, self.arrays, self.evaluate_config(t), self.grid)
        )
        if not messages:
            return
        record.bytes_down += _array_bytes(messages)
        replies = self.grid.stream(messages, timeout=self.timeout, named=self._named)
        del messages
        metrics = self.strategy.aggregate_evaluate(t, self._feed(ReplyTally(replies)))
        if metrics is None:
            return
        result.evaluate_metrics_clientapp[t] = metrics
        record.eval_loss = _first(metrics, _EVAL_LOSS_KEYS)
        record.eval_accuracy = _first(metrics, _EVAL_ACCURACY_KEYS)

    def _evaluate_centrally(self, record: RoundRecord, result: Result) -> None:
        started = time.monotonic()
        metrics = self.evaluate_fn(record.round, self.arrays) if self.evaluate_fn else None
        record.evaluate_seconds = time.monotonic() - started
        if metrics is None:
            return
        result.evaluate_metrics_serverapp[record.round] = metrics
        record.test_accuracy = _first(metrics, ("accuracy",))
        record.test_loss = _first(metrics, ("loss",))

    def _feed(self, tally: ReplyTally) -> Iterable[Message]:
        """The replies as the strategy reads them: streamed when it reads them once."""
        return tally if getattr(self.strategy, "reads_replies_once", False) else list(tally)

    def _end(self, record: RoundRecord, outcome: RunOutcome) -> None:
        outcome.records[record.round] = record
        if self.on_round_end is not None:
            self.on_round_end(record)


class ReplyTally:
    """The replies of one stream, counted as they pass: what the transport measured.

    Iterable once, like the stream. Counts every reply, the bytes of its
    arrays, the n_k of replies without an error, and each error's reason.
    """

    def __init__(self, replies: ReplyStream) -> None:
        self._replies = replies
        self.replies = 0
        self.bytes_up = 0
        self.examples = 0
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[Message]:
        for reply in self._replies:
            self._count(reply)
            yield reply
            del reply  # the consumer folded it: nothing here keeps it while the next is pulled

    def _count(self, reply: Message) -> None:
        self.replies += 1
        if reply.has_error():
            self.errors.append(
                f"node {reply.metadata.src_node_id}: error {reply.error.code}: {reply.error.reason}"
            )
            return
        for value in reply.content.values():
            if isinstance(value, ArrayRecord):
                self.bytes_up += value.count_bytes()
            elif isinstance(value, MetricRecord):
                n = value.get(NUM_EXAMPLES_KEY)
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    self.examples += n


def _empty_config(_: int) -> ConfigRecord:
    return ConfigRecord()


def _array_bytes(messages: list[Message]) -> int:
    """Bytes of the weights sent, as named arrays; a record shared by messages counts each time."""
    sizes: dict[int, int] = {}
    total = 0
    for message in messages:
        for value in message.content.values():
            if isinstance(value, ArrayRecord):
                if id(value) not in sizes:
                    sizes[id(value)] = value.count_bytes()
                total += sizes[id(value)]
    return total


def _learning_rate(messages: list[Message]) -> float | None:
    """eta_t as sent: the ``lr`` of the first instruction's config, if it has one."""
    for message in messages[:1]:
        for value in message.content.values():
            if isinstance(value, ConfigRecord):
                lr = value.get(LR_KEY)
                if isinstance(lr, (int, float)) and not isinstance(lr, bool):
                    return float(lr)
    return None


def _rejections_of(strategy: Strategy, server_round: int) -> list[str] | None:
    """The reasons the strategy, or the one a wrapper wraps, rejected replies for; None if it
    does not say (Flower's strategies drop error replies and fail on malformed ones)."""
    seen: set[int] = set()
    current: object = strategy
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        rejections_of = getattr(current, "rejections_of", None)
        if callable(rejections_of):
            return list(rejections_of(server_round))
        current = getattr(current, "strategy", None)  # Flower's wrappers keep it here
    return None


def _number(metrics: MetricRecord | None, key: str) -> float | None:
    value = None if metrics is None else metrics.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def _first(metrics: MetricRecord | None, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = _number(metrics, key)
        if value is not None:
            return float(value)
    return None
