"""FederatedAveraging as a drop-in Flower Strategy: Flower's wrappers, loop and ClientApps.

The clients here answer as ours do: they accept packed weights in the
identify query and reply in the form they were sent; ``TransportGrid`` packs
for them and unpacks their replies, so the wrapper reads named arrays. The
round runner (``server.rounds``) drives any of these strategies as Flower's
loop does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    Result,
    Strategy,
)

from protocol.packing import is_packed, pack, unpack
from server.transport import TransportGrid
from strategies.fedavg import FederatedAveraging
from strategies.records import to_array_record, to_named_arrays
from tests.fakes import FakeGrid, run_rounds, set_task_identity
from tests.test_strategy import GLOBAL

set_task_identity()


def packing_client(msg: Message, context: Context) -> Message:
    """Client k moves every weight by k + 1, n_k = 100 (k + 1); replies in the form it got."""
    k = int(context.node_config["partition-id"])
    if msg.metadata.message_type == "query.identify":
        identity = ConfigRecord({"client-id": k, "accepts-packed": True})
        return Message(RecordDict({"identity": identity}), reply_to=msg)
    received = msg.content["arrays"]
    arrays = {n: a + (k + 1) for n, a in unpack(received).items()}
    record = pack(arrays) if is_packed(received) else to_array_record(arrays)
    metrics = MetricRecord({"num-examples": 100 * (k + 1), "train-loss": float(k)})
    return Message(RecordDict({"arrays": record, "metrics": metrics}), reply_to=msg)


def initial() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})


def test_wrapper_started_the_flower_way_clips_each_update() -> None:
    """Client k moves every weight by k + 1; clipped to norm 0.5, every update is the same."""
    fake = FakeGrid(3, packing_client)
    grid = TransportGrid(fake)
    fedavg = FederatedAveraging(fraction_train=1.0)
    clipping = DifferentialPrivacyServerSideFixedClipping(
        fedavg, noise_multiplier=0.0, clipping_norm=0.5, num_sampled_clients=3
    )
    result = clipping.start(grid, initial(), num_rounds=2)

    final = to_named_arrays(result.arrays)
    size = sum(v.size for v in GLOBAL.values())
    # Unclipped, round 1 alone would move each weight by the n_k-weighted mean offset, 7/3.
    step = 0.5 / np.sqrt(size)
    for name, value in final.items():
        np.testing.assert_allclose(value, GLOBAL[name] + 2 * step, rtol=1e-5)
    assert [result.train_metrics_clientapp[t]["clients-rejected"] for t in (1, 2)] == [0, 0]
    assert len(fake.sent) == 6  # both rounds went through our sampling
    # Our clients said they read packed weights: on the wire w_t was one Array.
    assert all(is_packed(m.content["arrays"]) for m in fake.sent)


def test_without_a_wrapper_the_same_round_is_not_clipped() -> None:
    grid = TransportGrid(FakeGrid(3, packing_client))
    fedavg = FederatedAveraging(fraction_train=1.0)
    final = to_named_arrays(run_rounds(fedavg, grid, initial(), num_rounds=1).result.arrays)
    # Offsets 1, 2, 3 weighted by n_k = 100, 200, 300.
    assert final["w"][0, 0] == pytest.approx((1 * 100 + 2 * 200 + 3 * 300) / 600)


def quickstart_client(msg: Message, context: Context) -> Message:
    """A ClientApp in Flower's quickstart style: no identify handler, ``train_loss``, config lr."""
    if msg.metadata.message_type.startswith("query"):
        raise ValueError("no query handler")  # what Flower replies for an unknown action
    state = msg.content["arrays"].to_torch_state_dict()  # fails on a packed record
    lr = float(msg.content["config"]["lr"])
    k = int(context.node_config["partition-id"])
    arrays = ArrayRecord({n: t + lr * (k + 1) for n, t in state.items()})  # a state_dict
    metrics = MetricRecord({"train_loss": 0.5 * k, "num-examples": 10})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@pytest.mark.parametrize("loop", ["flower", "ours"])
def test_a_flower_quickstart_client_trains_under_federated_averaging(loop: str) -> None:
    fake = FakeGrid(2, quickstart_client)
    strategy = FederatedAveraging(fraction_train=1.0, lr=0.5)
    grid = TransportGrid(fake)
    if loop == "flower":
        result = Strategy.start(strategy, grid, initial(), num_rounds=2)
    else:
        result = run_rounds(strategy, grid, initial(), num_rounds=2).result
    # Equal n_k: each round moves every weight by lr * mean(k + 1) = 0.5 * 1.5.
    np.testing.assert_allclose(to_named_arrays(result.arrays)["w"], np.full((3, 2), 1.5))
    assert not any(is_packed(m.content["arrays"]) for m in fake.sent)
    assert result.train_metrics_clientapp[2]["clients-rejected"] == 0
    # train_loss, Flower's key, is read: the n_k-weighted mean of 0.0 and 0.5.
    assert result.train_metrics_clientapp[2]["train-loss"] == pytest.approx(0.25)


def test_a_reply_without_a_train_loss_is_accepted_and_its_loss_not_recorded() -> None:
    def no_loss(msg: Message, context: Context) -> Message:
        reply = quickstart_client(msg, context)
        metrics = MetricRecord({"num-examples": 10})
        return Message(
            RecordDict({"arrays": reply.content["arrays"], "metrics": metrics}), reply_to=msg
        )

    strategy = FederatedAveraging(fraction_train=1.0, lr=0.5)
    outcome = run_rounds(strategy, FakeGrid(2, no_loss), initial(), num_rounds=1)
    record = outcome.records[1]
    assert (record.clients_replied, record.clients_rejected, record.model_updated) == (2, 0, True)
    assert record.train_loss is None


def test_flowers_own_fedavg_reads_named_replies_from_packing_clients() -> None:
    """Through PackingGrid, Flower's FedAvg sees named arrays even from clients that pack."""
    fake = FakeGrid(3, packing_client)
    grid = TransportGrid(fake)
    FederatedAveraging(fraction_train=1.0).start(grid, initial(), num_rounds=1)  # identifies
    assert grid.packing_nodes == set(fake.node_ids)
    flower = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=3)
    result = flower.start(grid, initial(), num_rounds=1)
    assert result.arrays["w"].numpy()[0, 0] == pytest.approx((100 + 400 + 900) / 600)


def test_the_readme_serverapp_runs_as_written() -> None:
    """README's "in your own ServerApp" block, executed with a quickstart-style ClientApp."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## FederatedAveraging in your own ServerApp", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    started: list[Result] = []

    class MyNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)
            torch.nn.init.zeros_(self.fc.weight)
            torch.nn.init.zeros_(self.fc.bias)

    namespace: dict[str, object] = {"MyNet": MyNet}
    exec(compile(code + "\n    started.append(result)\n", "README.md", "exec"), namespace)
    namespace["started"] = started
    grid = FakeGrid(2, quickstart_client)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    namespace["main"](grid, context)  # type: ignore[operator]
    (result,) = started
    assert len(grid.sent) == 6  # 2 nodes x 3 rounds
    # Clients add lr * (k + 1) = 0.1, 0.2 to every weight (equal n_k, mean 0.15 a round);
    # an update's norm is at most 0.2 * sqrt(8), so clipping at 10 leaves it alone.
    for name in ("fc.weight", "fc.bias"):
        np.testing.assert_allclose(result.arrays[name].numpy(), 0.45, rtol=1e-5)


def test_keys_follow_flowers_constructor_conventions() -> None:
    """weighted_by_key, arrayrecord_key, configrecord_key as in Flower's FedAvg."""

    def client(msg: Message, context: Context) -> Message:
        k = int(context.node_config["partition-id"])
        if msg.metadata.message_type.startswith("query"):
            raise ValueError("no query handler")
        arrays = {n: a + (k + 1) for n, a in to_named_arrays(msg.content["weights"]).items()}
        assert msg.content["settings"]["lr"] == 0.1
        # One ArrayRecord and one MetricRecord, named as this client likes (Flower reads them so).
        metrics = MetricRecord({"n": 100 * (k + 1)})
        content = RecordDict({"update": to_array_record(arrays), "stats": metrics})
        return Message(content, reply_to=msg)

    strategy = FederatedAveraging(
        fraction_train=1.0,
        weighted_by_key="n",
        arrayrecord_key="weights",
        configrecord_key="settings",
    )
    outcome = run_rounds(strategy, FakeGrid(2, client), initial(), num_rounds=1)
    assert outcome.records[1].clients_rejected == 0
    assert outcome.result.arrays["w"].numpy()[0, 0] == pytest.approx((1 * 100 + 2 * 200) / 300)


def test_the_runner_hands_ours_packed_replies_and_a_wrapper_named_ones() -> None:
    """Unpacking copies every tensor of every reply; ours reads packed replies itself."""
    seen: dict[str, list[bool]] = {"ours": [], "wrapped": []}

    class Watching(FederatedAveraging):
        def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
            def watched():  # type: ignore[no-untyped-def]
                for reply in replies:
                    seen[self.name].append(is_packed(reply.content["arrays"]))
                    yield reply

            return super().aggregate_train(server_round, watched())

    ours, inner = Watching(fraction_train=1.0), Watching(fraction_train=1.0)
    ours.name, inner.name = "ours", "wrapped"  # type: ignore[attr-defined]
    wrapped = DifferentialPrivacyServerSideFixedClipping(
        inner, noise_multiplier=0.0, clipping_norm=100.0, num_sampled_clients=3
    )
    results = [
        run_rounds(strategy, FakeGrid(3, packing_client), initial(), num_rounds=1).result
        for strategy in (ours, wrapped)
    ]
    assert seen == {"ours": [True] * 3, "wrapped": [False] * 3}
    # Same average either way: offsets 1, 2, 3 weighted by n_k = 100, 200, 300.
    for result in results:
        assert result.arrays["w"].numpy()[0, 0] == pytest.approx(1400 / 600)
