"""The wire protocol between the ServerApp and the ClientApps.

Down (server -> client), one message per sampled client k:

- ``train``: RecordDict {ARRAYS_KEY: w_t, CONFIG_KEY: {SERVER_ROUND_KEY: t,
  LOCAL_EPOCHS_KEY: E, BATCH_SIZE_KEY: B (0 = inf), LR_KEY: eta_t}}
- ``evaluate``: RecordDict {ARRAYS_KEY: w_t, CONFIG_KEY: {SERVER_ROUND_KEY: t}}
- ``query.identify``: empty; asked once per node and run.

Up (client -> server), the reply to each:

- ``train``: {ARRAYS_KEY: w^k_{t+1}, METRICS_KEY: {NUM_EXAMPLES_KEY: n_k,
  TRAIN_LOSS_KEY: mean local training loss}}
- ``evaluate``: {METRICS_KEY: {NUM_EXAMPLES_KEY: n_k (local test examples),
  EVAL_LOSS_KEY, EVAL_ACCURACY_KEY}}
- ``query.identify``: {IDENTITY_KEY: {CLIENT_ID_KEY: the node's partition id,
  ACCEPTS_PACKED_KEY: true}}

Message groups are the round number (``group_id = str(t)``). The weights
(``ARRAYS_KEY``) travel packed, every tensor in one ``Array``
(``protocol.packing``), to the nodes whose identify reply accepts it
(``server.transport``), and a client replies in the form it was sent.
"""

from __future__ import annotations

from typing import Final

from flwr.app import MessageType

TRAIN: Final = MessageType.TRAIN
EVALUATE: Final = MessageType.EVALUATE
IDENTIFY: Final = "query.identify"

# Records of a message's RecordDict.
ARRAYS_KEY: Final = "arrays"
CONFIG_KEY: Final = "config"
METRICS_KEY: Final = "metrics"
IDENTITY_KEY: Final = "identity"

# Keys of the instruction's ConfigRecord.
SERVER_ROUND_KEY: Final = "server-round"
LOCAL_EPOCHS_KEY: Final = "local-epochs"
BATCH_SIZE_KEY: Final = "batch-size"
LR_KEY: Final = "lr"
PROXIMAL_MU_KEY: Final = "proximal-mu"  # Flower's FedProx sends it; 0 when absent

# Keys of the reply's MetricRecord / ConfigRecord.
NUM_EXAMPLES_KEY: Final = "num-examples"
TRAIN_LOSS_KEY: Final = "train-loss"
# What Flower's quickstart ClientApps send; read when ``train-loss`` is absent.
FLOWER_TRAIN_LOSS_KEY: Final = "train_loss"
EVAL_LOSS_KEY: Final = "eval-loss"
EVAL_ACCURACY_KEY: Final = "eval-accuracy"
CLIENT_ID_KEY: Final = "client-id"
# In the identify reply: this node reads packed weights (``protocol.packing``).
ACCEPTS_PACKED_KEY: Final = "accepts-packed"
