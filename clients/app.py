"""The ClientApp: ClientUpdate(k, w) of Algorithm 1, and local evaluation.

One ClientApp serves every task (Flower allows one per app): the run config's
``task`` picks the model and data. ``train`` loads the received global
weights w_t, runs E epochs of plain SGD with batch B and learning rate eta_t
(all three from the message, set by the server per round) on this node's
partition, and replies with w^k_{t+1}, n_k and the mean training loss.
``evaluate`` scores the received weights on the node's local test split.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.data import node_client_data, node_partition_id
from clients.faults import maybe_inject_fault
from protocol.config import ExperimentConfig
from protocol.messages import (
    ACCEPTS_PACKED_KEY,
    ARRAYS_KEY,
    BATCH_SIZE_KEY,
    CLIENT_ID_KEY,
    CONFIG_KEY,
    EVAL_ACCURACY_KEY,
    EVAL_LOSS_KEY,
    IDENTITY_KEY,
    LOCAL_EPOCHS_KEY,
    LR_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    PROXIMAL_MU_KEY,
    SERVER_ROUND_KEY,
    TRAIN_LOSS_KEY,
)
from protocol.packing import is_packed, pack, unpack
from tasks.registry import get_task, parse_run_config
from tasks.training import evaluate, resolve_device, train_local

app = ClientApp()

# Slack for clocks that disagree between the server that stamped a message and this node.
DEADLINE_GRACE_SECONDS = 5.0


class RoundDeadlinePassed(RuntimeError):
    """The message reached this client after its round stopped waiting for replies."""


def check_deadline(msg: Message) -> None:
    """Refuse work whose reply could only arrive after the round's deadline.

    A message's TTL is twice its round's ``round-timeout`` (see
    ``FederatedAveraging.start``). A SuperLink does not deliver it later, but
    in simulation a message can wait in the engine's queue behind a
    straggler: training on it would only delay the next rounds' clients.
    """
    deadline = msg.metadata.created_at + msg.metadata.ttl
    late = time.time() - deadline
    if late > DEADLINE_GRACE_SECONDS:
        raise RoundDeadlinePassed(
            f"message for round {msg.metadata.group_id} arrived {late:.1f} s after its "
            f"deadline (ttl {msg.metadata.ttl:g} s); not training on it"
        )


def _setup(msg: Message, context: Context) -> tuple[ExperimentConfig, torch.nn.Module]:
    config = parse_run_config(context.run_config)
    # Several simulated clients share the machine's cores: one thread each.
    torch.set_num_threads(config.client_threads)
    model = get_task(config.task).build_model().to(resolve_device(config.device))
    arrays = unpack(msg.content.array_records[ARRAYS_KEY])
    model.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in arrays.items()})
    return config, model


def _weights_record(model: torch.nn.Module, like: ArrayRecord) -> ArrayRecord:
    """w^k_{t+1} in the form w_t came in: packed (``protocol.packing``) or named."""
    if not is_packed(like):
        return ArrayRecord(model.state_dict())
    return pack({name: value.detach().cpu().numpy() for name, value in model.state_dict().items()})


def warm_executor_prepare(run_config: dict[str, Any], node_config: dict[str, Any]) -> None:
    """Load this node's data in the warm executor's process, for the tasks it forks next.

    Called by ``clients/warm_executor/`` after a task of the run completed
    (``prepare_for_tasks``): each forked task then finds the data in
    ``node_client_data``'s cache instead of hashing, reading and scaling it
    again (0.16-0.18 s per 2NN task of 20,000 examples). The cache is keyed on
    the data file's inode, size and mtime, so a node whose data was rewritten
    loads and checks it again. One torch thread: the process forks, and an
    OpenMP pool started here would not survive into its children.
    """
    config = parse_run_config(run_config)
    torch.set_num_threads(1)
    node_client_data(config, node_config)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Run ClientUpdate on this node's data and reply with w_k, n_k and the loss."""
    check_deadline(msg)
    config, model = _setup(msg, context)
    round_config = msg.content.config_records[CONFIG_KEY]
    server_round = int(round_config[SERVER_ROUND_KEY])  # type: ignore[arg-type]
    maybe_inject_fault(config, server_round, node_partition_id(context.node_config))
    data, partition_id = node_client_data(config, context.node_config)
    # Batch order is a function of (seed, round, client): the same run gives
    # the same updates in simulation and on a real federation.
    rng = np.random.default_rng([config.seed, server_round, partition_id])
    loss = train_local(
        model,
        data.train,
        epochs=int(round_config[LOCAL_EPOCHS_KEY]),  # type: ignore[arg-type]
        batch_size=int(round_config[BATCH_SIZE_KEY]),  # type: ignore[arg-type]
        lr=float(round_config[LR_KEY]),  # type: ignore[arg-type]
        rng=rng,
        proximal_mu=float(round_config.get(PROXIMAL_MU_KEY, 0.0)),  # type: ignore[arg-type]
    )
    content = RecordDict(
        {
            ARRAYS_KEY: _weights_record(model, msg.content.array_records[ARRAYS_KEY]),
            METRICS_KEY: MetricRecord(
                {TRAIN_LOSS_KEY: float(loss), NUM_EXAMPLES_KEY: len(data.train)}
            ),
        }
    )
    return Message(content, reply_to=msg)


@app.evaluate()
def local_evaluate(msg: Message, context: Context) -> Message:
    """Score the received global model on this node's local test split."""
    check_deadline(msg)
    config, model = _setup(msg, context)
    data, _ = node_client_data(config, context.node_config)
    loss, accuracy = evaluate(model, data.test, batch_size=config.eval_batch_size)
    metrics = MetricRecord(
        {EVAL_LOSS_KEY: loss, EVAL_ACCURACY_KEY: accuracy, NUM_EXAMPLES_KEY: len(data.test)}
    )
    return Message(RecordDict({METRICS_KEY: metrics}), reply_to=msg)


@app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    """Tell the server which client (partition) this node is, so that sampling is reproducible.

    The partition comes from ``partition-id`` or, on a real federation, from
    the manifest of the node's ``data-path``. The reply also says that this
    ClientApp reads packed weights (``server.transport`` packs only for
    nodes that say so).
    """
    identity = ConfigRecord(
        {CLIENT_ID_KEY: node_partition_id(context.node_config), ACCEPTS_PACKED_KEY: True}
    )
    return Message(RecordDict({IDENTITY_KEY: identity}), reply_to=msg)
