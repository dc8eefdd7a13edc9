"""BENCHMARK-ONLY ClientApp: replies to ``train`` with the weights it received.

Not FedAvg's ClientUpdate: it trains nothing. ``benchmarks/server_memory.py``
uses it (``--echo-clients``, the default) so that hundreds of clients of a
50 MB model fit a small machine while the server still receives, validates
and folds m full-size replies per round. It answers ``train`` with
w^k_{t+1} = w_t, n_k = 1 and a train loss of 0, and ``query.identify`` with
the node's partition id, as ``clients.app`` does. Run config
``bench.client-seconds`` (declared only in the benchmark's copy of the app)
makes each train reply wait that long, standing in for ClientUpdate's time.
"""

from __future__ import annotations

import time

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from protocol.messages import (
    ACCEPTS_PACKED_KEY,
    ARRAYS_KEY,
    CLIENT_ID_KEY,
    IDENTITY_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)

app = ClientApp()


@app.train()
def echo(msg: Message, context: Context) -> Message:
    """Reply with the received weights, n_k = 1, loss 0 (no training: benchmark only)."""
    time.sleep(float(context.run_config.get("bench.client-seconds", 0.0)))
    metrics = MetricRecord({NUM_EXAMPLES_KEY: 1, TRAIN_LOSS_KEY: 0.0})
    content = RecordDict({ARRAYS_KEY: msg.content.array_records[ARRAYS_KEY], METRICS_KEY: metrics})
    return Message(content, reply_to=msg)


@app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    """The node's partition id, for reproducible sampling; it reads packed weights."""
    identity = ConfigRecord(
        {
            CLIENT_ID_KEY: int(context.node_config["partition-id"]),  # type: ignore[arg-type]
            ACCEPTS_PACKED_KEY: True,  # it echoes w_t in the form it came
        }
    )
    return Message(RecordDict({IDENTITY_KEY: identity}), reply_to=msg)
