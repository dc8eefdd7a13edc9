"""FederatedAveraging (McMahan et al., AISTATS 2017, Algorithm 1) as a Flower Strategy.

Server side of Algorithm 1, one round t (``FederatedAveraging.start``):

1. Configure: m = max(floor(C * K), 1); S_t = m clients drawn uniformly
   without replacement from the K connected nodes, by a generator derived from
   (sampling seed, t) (``strategies.sampling``); nodes are listed by the client
   id (partition) each reports once per run (``strategies.nodes``), so a seed
   picks the same clients in every run and on every engine. Each k in S_t is
   sent w_t and the round's E, B and eta_t (eta_t = eta * lr_decay ** (t - 1);
   the paper tunes eta and decays it in some experiments).
2. Send and fold: each reply w^k_{t+1} is folded into the running sum
   w_{t+1} = sum_{k in S_t} (n_k / m_t) w^k_{t+1}, m_t = sum_{k in S_t} n_k,
   as it is pulled (``strategies.streaming``), and dropped; replies after the
   round's deadline are absent. Only replies that pass validation count
   (``strategies.replies``); the others are counted with their reason. With
   fewer than ``min_replies`` valid replies w_{t+1} = w_t.
3. Evaluate: optionally on a fraction of the clients' local test splits
   (federated evaluation), and centrally by the caller's ``evaluate_fn``.
4. Record: one ``RoundRecord`` per round goes to ``on_round_end`` (results
   files, checkpoints, trackers); the run stops early at the target when
   ``stop_at_target`` is set.

The hooks are a plain Flower Strategy: Flower's own ``Strategy.start`` drives
them, and so does a Flower wrapper around this strategy, started the Flower
way (``DifferentialPrivacyServerSideFixedClipping(FederatedAveraging(...),
...).start(grid, ...)``). ``start`` here adds what Algorithm 1's
reproduction needs on top of the same hooks: replies folded as they are
pulled, absolute rounds for a resumed run, round records and early stop.

The strategy sends and reads named arrays. Packing w_t into one Flower
``Array`` for the wire (``protocol.packing``) is the transport's job: the
ServerApp wraps Flower's grid in ``server.packing_grid.PackingGrid``, which
packs only for nodes that said they read it. A reply without a train loss is
accepted (its loss is not recorded); Flower's ``train_loss`` key is read too.

Deviations from Flower's built-in ``FedAvg``, on purpose: sampling is seeded
per round (Flower uses the global ``random``), C = 0 means one client (the
paper's reading; Flower's means "no training"), waiting for nodes has a
timeout (Flower's waits forever), and a malformed reply is rejected instead
of failing the run.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from logging import INFO, WARNING

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from protocol.messages import (
    ARRAYS_KEY,
    BATCH_SIZE_KEY,
    CONFIG_KEY,
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    LOCAL_EPOCHS_KEY,
    LR_KEY,
    NUM_EXAMPLES_KEY,
    SERVER_ROUND_KEY,
    TRAIN_LOSS_KEY,
)
from strategies.nodes import ClientDirectory, NodeWaitTimeout, wait_for_nodes
from strategies.records import NamedArrays, to_array_record, to_named_arrays
from strategies.replies import TrainFold, parse_evaluate_reply
from strategies.round_record import RoundRecord, result_of
from strategies.sampling import clients_per_round, sample_clients
from strategies.streaming import DEFAULT_INTERVAL, ReplyStream
from strategies.target import rounds_to_target

__all__ = ["FederatedAveraging", "NodeWaitTimeout", "RoundRecord"]

# Federated evaluation samples from its own stream, so that turning it on
# does not change which clients train.
_EVALUATE_SEED_OFFSET = 0x5EED

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


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
            partition) and sample over client ids rather than node ids
            (default: True).
        identify_timeout: seconds to wait for those answers (default: 60).
        poll_interval: seconds between pulls of a round's replies
            (default: 0.2).
        weighted_by_key: the reply metric that holds n_k (default:
            "num-examples", as Flower's ``FedAvg``).
        arrayrecord_key: the record of w_t in an instruction, and of w^k in
            a reply, where a reply with one ArrayRecord may name it as it
            likes (default: "arrays").
        configrecord_key: the record of E, B and eta_t in an instruction
            (default: "config").
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
        poll_interval: float = DEFAULT_INTERVAL,
        on_round_end: Callable[[RoundRecord], None] | None = None,
        weighted_by_key: str = NUM_EXAMPLES_KEY,
        arrayrecord_key: str = ARRAYS_KEY,
        configrecord_key: str = CONFIG_KEY,
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
        self.min_replies = min_replies
        self.first_round = first_round
        self.target_accuracy = target_accuracy
        self.stop_at_target = stop_at_target
        self.poll_interval = poll_interval
        self.on_round_end = on_round_end
        self.weighted_by_key = weighted_by_key
        self.arrayrecord_key = arrayrecord_key
        self.configrecord_key = configrecord_key
        self.records: dict[int, RoundRecord] = {}
        self.stopped_early = False
        self._global: NamedArrays = {}
        self._train_messages: list[Message] = []
        self._message_ttl: float | None = None  # Flower's default until start() sets it
        self._clients = ClientDirectory(
            identify=identify_clients, timeout=identify_timeout, stream=self._stream
        )

    # ------------------------------------------------- Algorithm 1, server side

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
        """Run rounds ``first_round`` .. ``first_round + num_rounds - 1`` of Algorithm 1.

        Args:
            grid: the federation.
            initial_arrays: w_{first_round - 1} (w_0 unless resuming).
            num_rounds: rounds to run.
            timeout: seconds a round waits for replies after sending w_t.
            train_config, evaluate_config: extra keys sent with every
                instruction.
            evaluate_fn: central evaluation, ``evaluate_fn(t, w_t)`` returns
                a MetricRecord with ``accuracy`` and ``loss`` (or None to skip
                the round).

        Returns:
            Flower's ``Result``, by absolute round; ``arrays`` is the last
            global model, also when no round produced a valid update.
        """
        self.summary()
        self.records, self.stopped_early = {}, False
        # A round's messages expire once the round can no longer use their replies: a
        # SuperLink then stops delivering them, and a client that gets one late skips it
        # (clients.app) rather than train for a round that has moved on. The round's clock
        # starts once its messages are pushed, a TTL's when they are made, and pushing to a
        # busy SuperLink can take a while: the TTL allows a second round-timeout for that.
        self._message_ttl = 2 * timeout
        arrays = initial_arrays
        self._global = to_named_arrays(arrays)
        if self.first_round == 1:  # a resumed run evaluated its checkpoint's model before
            self._end_round(self._evaluate(RoundRecord(round=0), arrays, evaluate_fn))
        for t in range(self.first_round, self.first_round + num_rounds):
            started = time.monotonic()
            # Configure and send: sample S_t, send w_t with E, B, eta_t.
            messages = self.configure_train(t, arrays, _copy(train_config), grid)
            # Fold: each valid reply joins the n_k-weighted sum as it is pulled.
            replies = self._stream(grid, messages, timeout=timeout)
            sent = time.monotonic()
            new_arrays, _ = self.aggregate_train(t, replies)
            record = self.records[t]
            log(
                INFO,
                "round %d: %d replies pulled in %d polls, at most %d at once",
                t,
                record.clients_replied,
                replies.polls,
                replies.largest_pull,
            )
            # Waiting for replies and folding them interleave: the fold's share is the rest.
            record.aggregate_seconds = time.monotonic() - sent - replies.wait_seconds
            record.clients_seconds = replies.wait_seconds
            if new_arrays is not None:
                arrays = new_arrays
            # Evaluate: on the clients' local splits (optional), then centrally.
            evaluate_messages = self.configure_evaluate(t, arrays, _copy(evaluate_config), grid)
            if evaluate_messages:
                evaluations = self._stream(grid, evaluate_messages, timeout=timeout)
                self.aggregate_evaluate(t, evaluations)
            self._evaluate(record, arrays, evaluate_fn)
            record.seconds = time.monotonic() - started
            # Record, and stop once the target is reached if asked to.
            self._end_round(record)
            if self.stop_at_target and self._reached_target(record):
                log(INFO, "round %d: target accuracy %s reached, stopping", t, self.target_accuracy)
                self.stopped_early = True
                break
        result = result_of(self.records)
        result.arrays = arrays
        return result

    # ----------------------------------------------------------- Strategy hooks

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
        self._global = to_named_arrays(arrays)
        node_ids = self.wait_for_nodes(grid)
        m = clients_per_round(self.fraction_train, len(node_ids))
        sampled = self._sample(grid, node_ids, m, self.sampling_seed, server_round)
        lr = self.learning_rate(server_round)
        train_config = ConfigRecord(dict(config))
        train_config[SERVER_ROUND_KEY] = server_round
        train_config[LOCAL_EPOCHS_KEY] = self.local_epochs
        train_config[BATCH_SIZE_KEY] = self.batch_size
        train_config[LR_KEY] = lr
        self.records[server_round] = RoundRecord(
            round=server_round,
            clients_available=len(node_ids),
            clients_sampled=len(sampled),
            lr=lr,
            bytes_down=arrays.count_bytes() * len(sampled),
        )
        log(INFO, "round %d: sampled %d of %d clients", server_round, m, len(node_ids))
        # Kept so that a reply is attributed to the node it answers for (grids give
        # each message its id as they push it): an error the SuperLink writes for a
        # vanished node comes from the SuperLink's own node id.
        self._train_messages = self._messages(
            arrays, train_config, sampled, MessageType.TRAIN, server_round
        )
        return self._train_messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Fold each valid reply into the n_k-weighted mean as it comes; count the others."""
        record = self.records.setdefault(server_round, RoundRecord(round=server_round))
        fold = TrainFold(
            self._global,
            max_examples=self.max_examples,
            max_update_norm=self.max_update_norm,
            server_round=server_round,
            arrays_key=self.arrayrecord_key,
            weight_key=self.weighted_by_key,
        )
        sent_to: dict[str, int] = {}
        for reply in replies:
            if not sent_to:  # message ids exist once the messages are pushed
                sent_to = {
                    m.metadata.message_id: m.metadata.dst_node_id for m in self._train_messages
                }
            fold.add(reply, sent_to.get(reply.metadata.reply_to_message_id, _source(reply)))
            # Flower's typed views (content.array_records, used by Flower's own strategies
            # and wrappers) put a reply in a reference cycle: its arrays would wait for the
            # cyclic GC, one model per reply. ``strategies.replies`` avoids the views; this
            # frees what other code may have left, before the next reply arrives.
            del reply
            gc.collect(1)
        record.clients_replied, record.bytes_up = fold.replied, fold.bytes_up
        record.clients_rejected, record.rejections = len(fold.rejections), fold.rejections
        metrics: dict[str, int | float | list[int] | list[float]] = {
            "clients-sampled": record.clients_sampled,
            "clients-replied": record.clients_replied,
            "clients-rejected": record.clients_rejected,
        }
        if fold.valid < self.min_replies:
            log(
                WARNING,
                "round %d skipped: %d valid replies of %d sampled, need min-replies=%d; "
                "the global model stays as it was",
                server_round,
                fold.valid,
                record.clients_sampled,
                self.min_replies,
            )
            return None, MetricRecord(metrics)
        record.examples, record.train_loss = fold.examples, fold.train_loss
        record.model_updated = True
        self._global = fold.result()
        metrics[NUM_EXAMPLES_KEY] = record.examples
        if record.train_loss is not None:
            metrics[TRAIN_LOSS_KEY] = record.train_loss
        return to_array_record(self._global), MetricRecord(metrics)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask a fraction of the clients to evaluate w_{t+1} locally (off by default)."""
        if self.fraction_evaluate <= 0:
            return []
        node_ids = self.wait_for_nodes(grid)
        m = clients_per_round(self.fraction_evaluate, len(node_ids))
        seed = self.sampling_seed + _EVALUATE_SEED_OFFSET
        sampled = self._sample(grid, node_ids, m, seed, server_round)
        evaluate_config = ConfigRecord(dict(config))
        evaluate_config[SERVER_ROUND_KEY] = server_round
        record = self.records.setdefault(server_round, RoundRecord(round=server_round))
        record.bytes_down += arrays.count_bytes() * len(sampled)
        return self._messages(arrays, evaluate_config, sampled, MessageType.EVALUATE, server_round)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """n_k-weighted mean of the clients' local loss and accuracy."""
        total, loss_sum, correct_sum = 0, 0.0, 0.0
        for reply in replies:
            parsed = parse_evaluate_reply(reply, weight_key=self.weighted_by_key)
            if isinstance(parsed, str):
                log(
                    WARNING,
                    "round %d: ignored the evaluation reply of node %d: %s",
                    server_round,
                    _source(reply),
                    parsed,
                )
                continue
            n, loss, accuracy = parsed
            total += n
            loss_sum += loss * n
            correct_sum += accuracy * n
        if total == 0:
            return None
        record = self.records.setdefault(server_round, RoundRecord(round=server_round))
        record.eval_loss, record.eval_accuracy = loss_sum / total, correct_sum / total
        return MetricRecord(
            {EVAL_LOSS_KEY: record.eval_loss, EVAL_ACCURACY_KEY: record.eval_accuracy}
        )

    # ------------------------------------------------------------------ queries

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

    @property
    def global_arrays(self) -> NamedArrays:
        """The current global model w_t by array name."""
        return self._global

    def wait_for_nodes(self, grid: Grid) -> list[int]:
        """Return the connected node ids once at least ``min_nodes`` are there."""
        return wait_for_nodes(grid, self.min_nodes, self.node_wait_seconds)

    def client_order(self, grid: Grid, node_ids: list[int]) -> list[int]:
        """Node ids sorted by client id; nodes without one follow, by node id."""
        return self._clients.order(grid, node_ids)

    # ------------------------------------------------------------------ helpers

    def _stream(
        self, grid: Grid, messages: Iterable[Message], *, timeout: float | None
    ) -> ReplyStream:
        return ReplyStream(grid, messages, timeout=timeout, interval=self.poll_interval)

    def _sample(
        self, grid: Grid, node_ids: list[int], m: int, seed: int, server_round: int
    ) -> list[int]:
        """S_t: m of the nodes, drawn over their client ids (see ``identify_clients``)."""
        order = self.client_order(grid, node_ids)
        positions = sample_clients(range(len(order)), m, seed=seed, server_round=server_round)
        return [order[p] for p in positions]

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
                RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config}),
                dst_node_id=node_id,
                message_type=message_type,
                group_id=str(server_round),
                ttl=self._message_ttl,
            )
            for node_id in node_ids
        ]

    def _evaluate(
        self, record: RoundRecord, arrays: ArrayRecord, evaluate_fn: EvaluateFn | None
    ) -> RoundRecord:
        """Central evaluation of the round's global model into its record."""
        started = time.monotonic()
        metrics = evaluate_fn(record.round, arrays) if evaluate_fn else None
        record.evaluate_seconds = time.monotonic() - started
        if metrics is not None:
            record.test_accuracy = _optional_float(metrics.get("accuracy"))
            record.test_loss = _optional_float(metrics.get("loss"))
        self.records[record.round] = record
        return record

    def _end_round(self, record: RoundRecord) -> None:
        if self.on_round_end is not None:
            self.on_round_end(record)

    def _reached_target(self, record: RoundRecord) -> bool:
        return (
            record.round > 0
            and self.target_accuracy is not None
            and record.test_accuracy is not None
            and record.test_accuracy >= self.target_accuracy
        )


def _copy(config: ConfigRecord | None) -> ConfigRecord:
    """A fresh ConfigRecord per round: hooks may add to it."""
    return ConfigRecord(dict(config or {}))


def _source(reply: Message) -> int:
    return reply.metadata.src_node_id


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
