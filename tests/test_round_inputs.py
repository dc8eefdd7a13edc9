"""What reaches a round: eta_t on the wire and in the ClientApp, after a resume, the sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from clients import app as client_app
from clients.data import node_client_data
from protocol.config import parse_config
from strategies.fedavg import FederatedAveraging
from strategies.records import to_named_arrays
from strategies.sampling import sample_clients
from tasks.registry import get_task
from tasks.training import train_local
from tests.fakes import FakeGrid, run_rounds, set_task_identity
from tests.test_strategy import GLOBAL, honest

set_task_identity()


def initial() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})


def train_messages(grid: FakeGrid) -> list[Message]:
    return [m for m in grid.sent if m.metadata.message_type == "train"]


def test_a_resumed_run_sends_the_same_decayed_eta_and_sample_as_the_whole_run() -> None:
    def strategy() -> FederatedAveraging:
        return FederatedAveraging(fraction_train=0.3, lr=0.2, lr_decay=0.5, sampling_seed=3)

    whole = FakeGrid(10, honest)
    run_rounds(strategy(), whole, initial(), num_rounds=4)
    resumed = FakeGrid(10, honest)
    outcome = run_rounds(strategy(), resumed, initial(), num_rounds=2, first_round=3)
    assert sorted(outcome.records) == [3, 4]  # round 0 was evaluated before the checkpoint

    def by_round(grid: FakeGrid) -> dict[int, tuple[float, list[int]]]:
        rounds: dict[int, tuple[float, list[int]]] = {}
        for m in train_messages(grid):
            t = int(m.content["config"]["server-round"])
            lr, nodes = rounds.get(t, (float(m.content["config"]["lr"]), []))
            rounds[t] = (lr, [*nodes, m.metadata.dst_node_id])
        return rounds

    assert by_round(resumed) == {t: v for t, v in by_round(whole).items() if t >= 3}
    assert by_round(resumed)[3][0] == pytest.approx(0.2 * 0.5**2)


def test_sampling_is_the_seeded_oracle_and_a_new_seed_changes_it() -> None:
    picks = {}
    for seed in (1, 2):
        grid = FakeGrid(10, honest)
        run_rounds(
            FederatedAveraging(fraction_train=0.3, sampling_seed=seed),
            grid,
            initial(),
            num_rounds=3,
        )
        picks[seed] = [m.metadata.dst_node_id for m in train_messages(grid)]
        expected = [
            grid.node_ids[p]
            for t in (1, 2, 3)
            for p in sample_clients(range(10), 3, seed=seed, server_round=t)
        ]
        assert picks[seed] == expected
    assert picks[1] != picks[2]


def test_federated_evaluation_leaves_the_training_sample_unchanged() -> None:
    def handler(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type.startswith("train"):
            return honest(msg, context)
        metrics = MetricRecord({"num-examples": 5, "eval-loss": 1.0, "eval-accuracy": 0.5})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    sampled = []
    for fraction_evaluate in (0.0, 0.5):
        grid = FakeGrid(10, handler)
        strategy = FederatedAveraging(
            fraction_train=0.2, fraction_evaluate=fraction_evaluate, sampling_seed=5
        )
        run_rounds(strategy, grid, initial(), num_rounds=4)
        sampled.append([m.metadata.dst_node_id for m in train_messages(grid)])
        evaluated = [m for m in grid.sent if m.metadata.message_type == "evaluate"]
        assert len(evaluated) == (20 if fraction_evaluate else 0)
    assert sampled[0] == sampled[1]


class DuplicatingGrid(FakeGrid):
    """Hands out every train reply twice, as a retrying transport might."""

    def pull_messages(self, message_ids):  # type: ignore[no-untyped-def]
        pulled = list(super().pull_messages(message_ids))
        return [r for reply in pulled for r in (reply, reply)]


def test_a_duplicate_reply_is_rejected_and_counted_once_in_the_average() -> None:
    grid = DuplicatingGrid(3, honest)
    strategy = FederatedAveraging(fraction_train=1.0, identify_clients=False)
    outcome = run_rounds(strategy, grid, initial(), num_rounds=1)
    final = to_named_arrays(outcome.result.arrays)
    record = outcome.records[1]
    assert (record.clients_replied, record.clients_rejected) == (6, 3)
    assert all("duplicate reply" in r for r in record.rejections)
    np.testing.assert_allclose(final["w"], (1 * 100 + 2 * 200 + 3 * 300) / 600, rtol=1e-6)


def test_the_clientapp_trains_with_the_messages_eta_not_the_run_configs(
    synthetic_mnist: Path,
) -> None:
    run_config = {"data-dir": str(synthetic_mnist), "lr": 0.1, "client-threads": 1}
    node_config = {"partition-id": 0, "num-partitions": 5}
    task = get_task("mnist-2nn")
    torch.manual_seed(0)
    model = task.build_model()

    def trained_by_the_clientapp(lr: float) -> dict[str, np.ndarray]:
        config = ConfigRecord({"server-round": 2, "local-epochs": 1, "batch-size": 10, "lr": lr})
        content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "config": config})
        msg = Message(content, dst_node_id=1000, message_type="train")
        msg.metadata.__dict__["_message_id"] = "m"
        context = Context(
            run_id=1,
            node_id=1000,
            node_config=node_config,
            state=RecordDict(),
            run_config=run_config,
        )
        return to_named_arrays(client_app.train(msg, context).content["arrays"])

    # The reference: E=1 epoch of plain SGD at eta_t = 0.025, the ClientApp's batch order.
    parsed = parse_config(run_config)
    data, partition = node_client_data(parsed, node_config)
    reference = task.build_model()
    reference.load_state_dict(model.state_dict())
    rng = np.random.default_rng([parsed.seed, 2, partition])
    train_local(reference, data.train, epochs=1, batch_size=10, lr=0.025, rng=rng)

    got = trained_by_the_clientapp(0.025)
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(got[name], value.numpy(), rtol=1e-5, atol=1e-6)
    at_run_config_lr = trained_by_the_clientapp(0.1)
    assert not all(np.allclose(at_run_config_lr[n], got[n]) for n in got)
