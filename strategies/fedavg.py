"""FederatedAveraging (McMahan et al., AISTATS 2017, Algorithm 1) as a Flower Strategy.

Server side of Algorithm 1, one round t:

1. m = max(floor(C * K), 1); S_t = m clients drawn uniformly without
   replacement from the K connected nodes, by a generator derived from
   (sampling seed, t) (``strategies.sampling``); the nodes are listed by the
   client id (partition) each reports once per run, so that a seed picks the
   same clients in every run and on every engine.
2. Each k in S_t receives w_t and the round's E, B and eta_t
   (eta_t = eta * lr_decay ** (t - 1); the paper tunes eta and decays it in
   some experiments) and runs ClientUpdate(k, w_t).
3. w_{t+1} = sum_{k in S_t} (n_k / m_t) w^k_{t+1}, m_t = sum_{k in S_t} n_k,
   over the replies that pass validation (``strategies.validation``) only.
   A reply with an error, without a positive integer n_k or a finite
   train-loss, with arrays of other names, shapes or dtypes, with NaN/Inf, or
   beyond the optional update-norm bound is excluded and counted (federated
   evaluation replies with a non-finite loss or accuracy are ignored). With no
   valid reply w_{t+1} = w_t.

Deviations from Flower's built-in ``FedAvg``, on purpose: sampling is seeded
per round (Flower uses the global ``random``), C = 0 means one client (the
paper's reading; Flower's means "no training"), waiting for nodes has a
timeout (Flower's waits forever), and a malformed reply is rejected instead
of failing the run.

Central evaluation is the caller's ``evaluate_fn`` (see ``start``); this class
adds the paper's rounds-to-target (best-so-far, linearly interpolated) and an
optional early stop once the target is reached. ``on_round_end`` receives one
``RoundRecord`` per round: the hook for results files and trackers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from protocol.messages import (
    ARRAYS_KEY,
    CLIENT_ID_KEY,
    CONFIG_KEY,
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    IDENTIFY,
    IDENTITY_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)
from strategies.aggregation import WeightedMean
from strategies.records import NamedArrays, to_array_record, to_named_arrays
from strategies.sampling import clients_per_round, sample_clients
from strategies.target import rounds_to_target
from strategies.validation import check_arrays, check_num_examples, spec_of

# Federated evaluation samples from its own stream, so that turning it on
# does not change which clients train.
_EVALUATE_SEED_OFFSET = 0x5EED

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


class NodeWaitTimeout(RuntimeError):
    """Fewer SuperNodes than required connected within the wait time."""


class _TargetReached(Exception):
    """Raised from the evaluation hook to end the round loop early."""


@dataclass
class RoundRecord:
    """What happened in one round: the row behind ``metrics.jsonl``."""

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
    # ClientUpdate, transport), the aggregation, the central evaluation.
    clients_seconds: float = 0.0
    aggregate_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    model_updated: bool = False


class FederatedAveraging(Strategy):
    """The paper's FederatedAveraging; FedSGD is ``local_epochs=1, batch_size=0``.

    Args:
        fraction_train: C, the fraction of the K clients sampled per round
            (default: 0.1). C = 0 samples one client.
        local_epochs: E, local passes over the client's data (default: 1).
        batch_size: B, the local minibatch size; 0 means B = inf, the whole
            local data set as one batch (default: 10).
        lr: eta, the clients' SGD learning rate (default: 0.1).
        lr_decay: per-round factor on eta, eta_t = eta * lr_decay**(t-1)
            (default: 1.0, no decay).
        sampling_seed: seed of the per-round client sampling (default: 0).
        min_nodes: SuperNodes to wait for before sampling (default: 1).
        node_wait_seconds: how long to wait for them before failing with
            ``NodeWaitTimeout`` (default: 120).
        fraction_evaluate: fraction of clients asked to evaluate the global
            model on their local split each round; 0 disables federated
            evaluation (default: 0.0).
        max_update_norm: reject replies with ||w_k - w_t|| above this; None
            for no bound (default: None).
        max_examples: reject replies whose n_k exceeds this (default: None).
        min_replies: valid replies needed to update the model; a round with
            fewer is skipped, w_{t+1} = w_t, and logged (default: 1).
        first_round: the number of the first round this ``start`` runs;
            above 1 when resuming from a checkpoint of round first_round - 1.
            Sampling, eta_t and the records use these absolute rounds, so a
            resumed run repeats the uninterrupted one (default: 1).
        target_accuracy: the accuracy for rounds-to-target (default: None).
        stop_at_target: end the run at the first evaluated round whose
            accuracy reaches the target (default: False).
        identify_clients: ask each node once for its client id (its
            partition) and sample over client ids rather than node ids.
            Flower gives nodes random ids in every run, so without this the
            same seed would pick other clients in another run or on another
            engine (default: True).
        identify_timeout: seconds to wait for those answers (default: 60).
        on_round_end: called with each round's ``RoundRecord`` once the
            round, including central evaluation, is done (default: None).
    """

    def __init__(
        self,
        *,
        fraction_train: float = 0.1,
        local_epochs: int = 1,
        batch_size: int = 10,
        lr: float = 0.1,
        lr_decay: float = 1.0,
        sampling_seed: int = 0,
        min_nodes: int = 1,
        node_wait_seconds: float = 120.0,
        fraction_evaluate: float = 0.0,
        max_update_norm: float | None = None,
        max_examples: int | None = None,
        min_replies: int = 1,
        first_round: int = 1,
        target_accuracy: float | None = None,
        stop_at_target: bool = False,
        identify_clients: bool = True,
        identify_timeout: float = 60.0,
        on_round_end: Callable[[RoundRecord], None] | None = None,
    ) -> None:
        clients_per_round(fraction_train, 1)  # validates C
        if local_epochs < 1 or batch_size < 0 or lr <= 0 or not 0 < lr_decay <= 1:
            raise ValueError(
                f"need E >= 1, B >= 0, eta > 0, 0 < lr_decay <= 1; got E={local_epochs}, "
                f"B={batch_size}, eta={lr}, lr_decay={lr_decay}"
            )
        if min_replies < 1 or first_round < 1:
            raise ValueError(
                f"need min_replies >= 1 and first_round >= 1, got {min_replies}, {first_round}"
            )
        if stop_at_target and target_accuracy is None:
            raise ValueError("stop_at_target needs a target_accuracy")
        self.fraction_train = fraction_train
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.sampling_seed = sampling_seed
        self.min_nodes = min_nodes
        self.node_wait_seconds = node_wait_seconds
        self.fraction_evaluate = fraction_evaluate
        self.max_update_norm = max_update_norm
        self.max_examples = max_examples
        self.target_accuracy = target_accuracy
        self.stop_at_target = stop_at_target
        self.on_round_end = on_round_end
        self.min_replies = min_replies
        self.first_round = first_round
        self.records: dict[int, RoundRecord] = {}
        self._global: NamedArrays = {}
        self._train_messages: list[Message] = []
        self._round_started = 0.0
        self._train_sent = 0.0
        self._message_ttl: float | None = None  # Flower's default until start() sets it
        self.identify_clients = identify_clients
        self.identify_timeout = identify_timeout
        self._client_ids: dict[int, int | None] = {}

    # ------------------------------------------------------------------ hooks

    def summary(self) -> None:
        batch = "inf" if self.batch_size == 0 else self.batch_size
        log(
            INFO,
            "FederatedAveraging: C=%s, E=%s, B=%s, eta=%s (decay %s), sampling seed %s",
            self.fraction_train,
            self.local_epochs,
            batch,
            self.lr,
            self.lr_decay,
            self.sampling_seed,
        )

    def learning_rate(self, server_round: int) -> float:
        """eta_t for round t (1-based)."""
        return self.lr * self.lr_decay ** (server_round - 1)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample S_t and send each client w_t with the round's E, B and eta_t."""
        server_round = self._absolute(server_round)
        self._round_started = time.monotonic()
        self._global = to_named_arrays(arrays)
        node_ids = self.wait_for_nodes(grid)
        m = clients_per_round(self.fraction_train, len(node_ids))
        sampled = self._sample(grid, node_ids, m, self.sampling_seed, server_round)
        lr = self.learning_rate(server_round)
        # A copy: Flower hands the same ConfigRecord to every round.
        train_config = ConfigRecord(dict(config))
        train_config["server-round"] = server_round
        train_config["local-epochs"] = self.local_epochs
        train_config["batch-size"] = self.batch_size
        train_config["lr"] = lr
        record = RoundRecord(
            round=server_round,
            clients_available=len(node_ids),
            clients_sampled=len(sampled),
            lr=lr,
            bytes_down=arrays.count_bytes() * len(sampled),
        )
        self.records[server_round] = record
        log(INFO, "round %d: sampled %d of %d clients", server_round, m, len(node_ids))
        # Kept so that a reply is attributed to the node it answers for: an error the
        # SuperLink writes for a vanished node comes from the SuperLink's own node id.
        self._train_messages = self._messages(
            arrays, train_config, sampled, MessageType.TRAIN, server_round
        )
        self._train_sent = time.monotonic()
        return self._train_messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average the valid replies by n_k; reject and count the others."""
        started = time.monotonic()
        server_round = self._absolute(server_round)
        record = self.records.setdefault(server_round, RoundRecord(round=server_round))
        record.clients_seconds = started - self._train_sent
        expected = spec_of(self._global)
        mean = WeightedMean()
        loss_sum, seen_nodes = 0.0, set[int]()
        # Grids give each message its id as they push it.
        sent_to = {m.metadata.message_id: m.metadata.dst_node_id for m in self._train_messages}
        for reply in replies:
            record.clients_replied += 1
            node = sent_to.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            if reply.has_content():
                arrays_record = reply.content.array_records.get(ARRAYS_KEY)
                if arrays_record is not None:
                    record.bytes_up += arrays_record.count_bytes()
            reason = "duplicate reply" if node in seen_nodes else None
            seen_nodes.add(node)
            parsed = None
            if reason is None:
                parsed, reason = self._parse_train_reply(reply, expected)
            if reason is not None or parsed is None:
                record.clients_rejected += 1
                record.rejections.append(f"node {node}: {reason}")
                log(
                    WARNING,
                    "round %d: rejected the reply of node %d: %s",
                    server_round,
                    node,
                    reason,
                )
                continue
            arrays, num_examples, loss = parsed
            mean.add(arrays, num_examples)
            loss_sum += loss * num_examples
        metrics: dict[str, int | float | list[int] | list[float]] = {
            "clients-sampled": record.clients_sampled,
            "clients-replied": record.clients_replied,
            "clients-rejected": record.clients_rejected,
        }
        if mean.count < self.min_replies:
            log(
                WARNING,
                "round %d skipped: %d valid replies of %d sampled, need min-replies=%d; "
                "the global model stays as it was",
                server_round,
                mean.count,
                record.clients_sampled,
                self.min_replies,
            )
            record.aggregate_seconds = time.monotonic() - started
            return None, MetricRecord(metrics)
        record.examples = int(mean.total_weight)
        record.train_loss = loss_sum / mean.total_weight
        record.model_updated = True
        self._global = mean.result()
        record.aggregate_seconds = time.monotonic() - started
        return to_array_record(self._global), MetricRecord(
            {**metrics, TRAIN_LOSS_KEY: record.train_loss, NUM_EXAMPLES_KEY: record.examples}
        )

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask a fraction of the clients to evaluate w_{t+1} locally (off by default)."""
        server_round = self._absolute(server_round)
        if self.fraction_evaluate <= 0:
            return []
        node_ids = self.wait_for_nodes(grid)
        m = clients_per_round(self.fraction_evaluate, len(node_ids))
        seed = self.sampling_seed + _EVALUATE_SEED_OFFSET
        sampled = self._sample(grid, node_ids, m, seed, server_round)
        evaluate_config = ConfigRecord(dict(config))
        evaluate_config["server-round"] = server_round
        self.records[server_round].bytes_down += arrays.count_bytes() * len(sampled)
        return self._messages(arrays, evaluate_config, sampled, MessageType.EVALUATE, server_round)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """n_k-weighted mean of the clients' local loss and accuracy."""
        server_round = self._absolute(server_round)
        total, loss_sum, correct_sum = 0, 0.0, 0.0
        for reply in replies:
            if reply.has_error() or METRICS_KEY not in reply.content.metric_records:
                continue
            metrics = reply.content.metric_records[METRICS_KEY]
            n, loss, accuracy = (
                metrics.get(NUM_EXAMPLES_KEY),
                metrics.get(EVAL_LOSS_KEY),
                metrics.get(EVAL_ACCURACY_KEY),
            )
            problem = (
                check_num_examples(n)
                or _check_finite(EVAL_LOSS_KEY, loss)
                or _check_finite(EVAL_ACCURACY_KEY, accuracy)
            )
            if problem is not None:
                log(
                    WARNING,
                    "round %d: ignored the evaluation reply of node %d: %s",
                    server_round,
                    reply.metadata.src_node_id,
                    problem,
                )
                continue
            total += int(n)  # type: ignore[arg-type]
            loss_sum += float(loss) * int(n)  # type: ignore[arg-type]
            correct_sum += float(accuracy) * int(n)  # type: ignore[arg-type]
        if total == 0:
            return None
        record = self.records[server_round]
        record.eval_loss, record.eval_accuracy = loss_sum / total, correct_sum / total
        return MetricRecord(
            {EVAL_LOSS_KEY: record.eval_loss, EVAL_ACCURACY_KEY: record.eval_accuracy}
        )

    # ------------------------------------------------------------ round loop

    def start(  # noqa: PLR0917 - Flower's signature
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: EvaluateFn | None = None,
    ) -> Result:
        """Flower's round loop, with round records, rounds-to-target and early stop.

        ``evaluate_fn(round, arrays)`` should return a MetricRecord with
        ``accuracy`` and ``loss`` (or None to skip a round's evaluation).
        The returned ``Result.arrays`` is always the last global model, also
        when no round produced a valid update.
        """
        self.records = {}
        self._global = to_named_arrays(initial_arrays)
        self._stopped_early = False
        # A round's messages expire once the round can no longer use their replies: a
        # SuperLink then stops delivering them, and a client that gets one late skips it
        # (clients.app) rather than train for a round that has moved on. The round's clock
        # starts once its messages are pushed, a TTL's when they are made, and pushing to a
        # busy SuperLink can take a while: the TTL allows a second round-timeout for that.
        self._message_ttl = 2 * timeout
        hook = self._evaluation_hook(evaluate_fn)
        try:
            super().start(
                grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, hook
            )
        except _TargetReached:
            self._stopped_early = True
        # Built from our records so that rounds are absolute (also when resuming).
        result = self._result_so_far()
        result.arrays = to_array_record(self._global)
        return result

    @property
    def stopped_early(self) -> bool:
        """Whether the last ``start`` ended at the target before its last round."""
        return getattr(self, "_stopped_early", False)

    def rounds_to_target(self) -> float | None:
        """Rounds to ``target_accuracy`` the paper's way, from the evaluated rounds so far."""
        if self.target_accuracy is None:
            return None
        evaluated = [
            (r, rec.test_accuracy)
            for r, rec in sorted(self.records.items())
            if rec.test_accuracy is not None
        ]
        return rounds_to_target(
            [r for r, _ in evaluated],
            [a for _, a in evaluated],
            self.target_accuracy,  # type: ignore[misc]
        )

    def wait_for_nodes(self, grid: Grid) -> list[int]:
        """Return the connected node ids once at least ``min_nodes`` are there."""
        deadline = time.monotonic() + self.node_wait_seconds
        while True:
            node_ids = list(grid.get_node_ids())
            if len(node_ids) >= self.min_nodes:
                return node_ids
            if time.monotonic() >= deadline:
                raise NodeWaitTimeout(
                    f"only {len(node_ids)} SuperNode(s) connected after "
                    f"{self.node_wait_seconds:g} s, need min-nodes={self.min_nodes}"
                )
            log(INFO, "waiting for SuperNodes: %d of %d connected", len(node_ids), self.min_nodes)
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    # --------------------------------------------------------------- helpers

    def _sample(
        self, grid: Grid, node_ids: list[int], m: int, seed: int, server_round: int
    ) -> list[int]:
        """S_t: m of the nodes, drawn over their client ids (see ``identify_clients``)."""
        order = self.client_order(grid, node_ids)
        positions = sample_clients(range(len(order)), m, seed=seed, server_round=server_round)
        return [order[p] for p in positions]

    def client_order(self, grid: Grid, node_ids: list[int]) -> list[int]:
        """Node ids sorted by client id; nodes without one follow, by node id."""
        unknown = [n for n in node_ids if n not in self._client_ids]
        if unknown and self.identify_clients:
            self._client_ids.update(self._identify(grid, unknown))
        for node in unknown:
            self._client_ids.setdefault(node, None)

        def key(node: int) -> tuple[int, int, int]:
            client = self._client_ids[node]
            return (0, client, node) if client is not None else (1, 0, node)

        return sorted(node_ids, key=key)

    def _identify(self, grid: Grid, node_ids: list[int]) -> dict[int, int | None]:
        messages = [Message(RecordDict(), dst_node_id=n, message_type=IDENTIFY) for n in node_ids]
        found: dict[int, int | None] = {}
        for reply in grid.send_and_receive(messages, timeout=self.identify_timeout):
            value = None
            if reply.has_content() and IDENTITY_KEY in reply.content.config_records:
                value = reply.content.config_records[IDENTITY_KEY].get(CLIENT_ID_KEY)
            valid = isinstance(value, int) and not isinstance(value, bool)
            found[reply.metadata.src_node_id] = value if valid else None  # type: ignore[assignment]
        missing = len(node_ids) - sum(v is not None for v in found.values())
        if missing:
            log(WARNING, "%d node(s) gave no client id; they are ordered by node id", missing)
        return found

    def _messages(
        self,
        arrays: ArrayRecord,
        config: ConfigRecord,
        node_ids: list[int],
        message_type: str,
        server_round: int,
    ) -> list[Message]:
        return [
            Message(
                RecordDict({ARRAYS_KEY: arrays, CONFIG_KEY: config}),
                dst_node_id=node_id,
                message_type=message_type,
                group_id=str(server_round),
                ttl=self._message_ttl,
            )
            for node_id in node_ids
        ]

    def _parse_train_reply(
        self, reply: Message, expected: dict
    ) -> tuple[tuple[NamedArrays, int, float] | None, str | None]:
        if reply.has_error():
            reason = (reply.error.reason or "").strip().splitlines()
            return None, f"error code {reply.error.code}: {reason[-1] if reason else ''}"[:500]
        content = reply.content
        if ARRAYS_KEY not in content.array_records:
            return None, f"no ArrayRecord {ARRAYS_KEY!r}"
        if METRICS_KEY not in content.metric_records:
            return None, f"no MetricRecord {METRICS_KEY!r}"
        metrics = content.metric_records[METRICS_KEY]
        num_examples = metrics.get(NUM_EXAMPLES_KEY)
        problem = check_num_examples(num_examples, max_examples=self.max_examples)
        if problem is not None:
            return None, problem
        loss = metrics.get(TRAIN_LOSS_KEY)
        problem = _check_finite(TRAIN_LOSS_KEY, loss)
        if problem is not None:
            return None, problem
        arrays = to_named_arrays(content.array_records[ARRAYS_KEY])
        problem = check_arrays(
            arrays, expected, reference=self._global, max_update_norm=self.max_update_norm
        )
        if problem is not None:
            return None, problem
        return (arrays, int(num_examples), float(loss)), None  # type: ignore[arg-type]

    def _evaluation_hook(self, evaluate_fn: EvaluateFn | None) -> EvaluateFn:
        def hook(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_round == 0 and self.first_round > 1:
                return None  # resuming: the checkpoint's model was evaluated before
            server_round = self._absolute(server_round) if server_round else 0
            started = time.monotonic()
            metrics = evaluate_fn(server_round, arrays) if evaluate_fn else None
            record = self.records.setdefault(server_round, RoundRecord(round=server_round))
            record.evaluate_seconds = time.monotonic() - started
            if metrics is not None:
                record.test_accuracy = _optional_float(metrics.get("accuracy"))
                record.test_loss = _optional_float(metrics.get("loss"))
            if server_round > 0:
                record.seconds = time.monotonic() - self._round_started
            if self.on_round_end is not None:
                self.on_round_end(record)
            reached = (
                self.target_accuracy is not None
                and record.test_accuracy is not None
                and record.test_accuracy >= self.target_accuracy
            )
            if self.stop_at_target and reached and server_round > 0:
                log(
                    INFO,
                    "round %d: target accuracy %s reached, stopping",
                    server_round,
                    self.target_accuracy,
                )
                raise _TargetReached
            return metrics

        return hook

    def _absolute(self, local_round: int) -> int:
        """Flower counts the rounds of this ``start`` from 1; we count from the run's start."""
        return local_round + self.first_round - 1

    @property
    def global_arrays(self) -> NamedArrays:
        """The current global model w_t by array name."""
        return self._global

    def _result_so_far(self) -> Result:
        result = Result()
        for r, rec in sorted(self.records.items()):
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


def _check_finite(key: str, value: object) -> str | None:
    """Why ``value`` is not a finite number (for a reply's metric ``key``), or None."""
    if value is None:
        return f"no {key}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{key} must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"{key} is {value!r} (NaN or Inf)"
    return None


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
