"""FederatedAveraging (McMahan et al., AISTATS 2017, Algorithm 1) as a Flower Strategy.

Server side of Algorithm 1, one round t, as Flower's Strategy hooks:

1. ``configure_train``: m = max(floor(C * K), 1); S_t = m clients drawn
   uniformly without replacement from the K connected nodes, by a generator
   derived from (sampling seed, t) (``strategies.sampling``); nodes are listed
   by the client id (partition) each reports once per run
   (``strategies.nodes``), so a seed picks the same clients in every run and
   on every engine. Each k in S_t is sent w_t and the round's E, B and eta_t
   (eta_t = eta * lr_decay ** (t - 1); the paper tunes eta and decays it in
   some experiments).
2. ``aggregate_train``: each reply w^k_{t+1} is folded into the running sum
   w_{t+1} = sum_{k in S_t} (n_k / m_t) w^k_{t+1}, m_t = sum_{k in S_t} n_k,
   as it is read, and dropped (``strategies.replies``). Only replies that
   pass validation count; the others are counted with their reason
   (``rejections_of``). With fewer than ``min_replies`` valid replies the
   round is skipped: no new arrays, w_{t+1} = w_t.
3. ``configure_evaluate`` / ``aggregate_evaluate``: optionally, the n_k-weighted
   loss and accuracy of w_{t+1} on a fraction of the clients' local test
   splits (federated evaluation), sampled from a stream of its own.

That is all the strategy does: it is a plain Flower Strategy, driven by
Flower's own ``Strategy.start``, by a Flower wrapper around it started the
Flower way (``DifferentialPrivacyServerSideFixedClipping(FederatedAveraging(
...), ...).start(grid, ...)``), or by this project's round runner
(``server.rounds``), which adds what the reproduction needs around the same
hooks: replies streamed into ``aggregate_train`` as they are pulled, absolute
rounds for a resumed run, central evaluation, one record per round, early
stop at the target and the stall rule. The strategy sends and reads named
arrays; packing them for the wire is the transport's job
(``server.transport``).

A reply without a train loss is accepted (its loss is not recorded); Flower's
``train_loss`` key is read too.

Deviations from Flower's built-in ``FedAvg``, on purpose: sampling is seeded
per round (Flower uses the global ``random``), C = 0 means one client (the
paper's reading; Flower's means "no training"), waiting for nodes has a
timeout (Flower's waits forever), and a malformed reply is rejected instead
of failing the run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from logging import INFO, WARNING
from typing import ClassVar

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

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
from strategies.sampling import clients_per_round, sample_clients

__all__ = ["CLIENTS_REJECTED_KEY", "FederatedAveraging", "NodeWaitTimeout"]

# Federated evaluation samples from its own stream, so that turning it on
# does not change which clients train.
_EVALUATE_SEED_OFFSET = 0x5EED

# aggregate_train's metrics: how many of the round's replies failed validation.
CLIENTS_REJECTED_KEY = "clients-rejected"


def decayed_learning_rate(lr: float, lr_decay: float, server_round: int) -> float:
    """eta_t = eta * lr_decay ** (t - 1) for round t (1-based)."""
    return lr * lr_decay ** (server_round - 1)


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
        identify_clients: ask each node once for its client id (its
            partition) and sample over client ids rather than node ids
            (default: True).
        identify_timeout: seconds to wait for those answers (default: 60).
        weighted_by_key: the reply metric that holds n_k (default:
            "num-examples", as Flower's ``FedAvg``).
        arrayrecord_key: the record of w_t in an instruction, and of w^k in
            a reply, where a reply with one ArrayRecord may name it as it
            likes (default: "arrays").
        configrecord_key: the record of E, B and eta_t in an instruction
            (default: "config").
    """

    # aggregate_train folds each reply as it comes and never looks back: a runner may hand
    # it the replies as they are pulled (``server.rounds``) instead of a list of all m.
    reads_replies_once: ClassVar[bool] = True
    # strategies.replies reads a reply's weights packed (protocol.packing) or named, so a
    # transport may hand packed replies over as they came.
    reads_packed_replies: ClassVar[bool] = True

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
        identify_clients: bool = True,
        identify_timeout: float = 60.0,
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
        if min_replies < 1:
            raise ValueError(f"need min_replies >= 1, got {min_replies}")
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
        self.weighted_by_key = weighted_by_key
        self.arrayrecord_key = arrayrecord_key
        self.configrecord_key = configrecord_key
        # w_t as sent in configure_train: the reference of aggregate_train's norm bound
        # and array specs (Flower's FedAvgM and FedOpt keep theirs the same way).
        self._global: NamedArrays = {}
        self._train_messages: list[Message] = []
        self._rejections: dict[int, list[str]] = {}
        self._clients = ClientDirectory(identify=identify_clients, timeout=identify_timeout)

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
        return decayed_learning_rate(self.lr, self.lr_decay, server_round)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample S_t and send each client w_t with the round's E, B and eta_t."""
        self._global = to_named_arrays(arrays)
        node_ids = self.wait_for_nodes(grid)
        m = clients_per_round(self.fraction_train, len(node_ids))
        sampled = self._sample(grid, node_ids, m, self.sampling_seed, server_round)
        train_config = ConfigRecord(dict(config))
        train_config[SERVER_ROUND_KEY] = server_round
        train_config[LOCAL_EPOCHS_KEY] = self.local_epochs
        train_config[BATCH_SIZE_KEY] = self.batch_size
        train_config[LR_KEY] = self.learning_rate(server_round)
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
        """Fold each valid reply into the n_k-weighted mean as it comes; count the others.

        The metrics: ``num-examples`` (m_t) and ``train-loss`` (the n_k-weighted
        mean of the clients' losses, when they sent one) of an update, and
        ``clients-rejected`` always; the reasons are ``rejections_of(t)``.
        """
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
        self._rejections = {server_round: fold.rejections}
        metrics: dict[str, int | float | list[int] | list[float]] = {
            CLIENTS_REJECTED_KEY: len(fold.rejections),
        }
        if fold.valid < self.min_replies:
            log(
                WARNING,
                "round %d skipped: %d valid replies of %d, need min-replies=%d; "
                "the global model stays as it was",
                server_round,
                fold.valid,
                fold.replied,
                self.min_replies,
            )
            return None, MetricRecord(metrics)
        self._global = fold.result()
        metrics[NUM_EXAMPLES_KEY] = fold.examples
        if fold.train_loss is not None:
            metrics[TRAIN_LOSS_KEY] = fold.train_loss
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
        return MetricRecord(
            {
                EVAL_LOSS_KEY: loss_sum / total,
                EVAL_ACCURACY_KEY: correct_sum / total,
                NUM_EXAMPLES_KEY: total,
            }
        )

    # ------------------------------------------------------------------ queries

    def rejections_of(self, server_round: int) -> list[str]:
        """Why each rejected train reply of ``server_round`` (the last aggregated) was rejected."""
        return list(self._rejections.get(server_round, []))

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
            )
            for node_id in node_ids
        ]


def _source(reply: Message) -> int:
    return reply.metadata.src_node_id
