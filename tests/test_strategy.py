"""FederatedAveraging against fake clients whose replies we control."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from protocol.packing import unpack
from server.round_record import RoundRecord
from server.rounds import RunOutcome
from server.stopping import Stopping
from strategies.fedavg import FederatedAveraging, NodeWaitTimeout
from strategies.records import to_named_arrays
from strategies.sampling import sample_clients
from tests.fakes import FakeGrid, run_rounds, set_task_identity

set_task_identity()

GLOBAL = {"w": np.zeros((3, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


def reply(msg: Message, arrays: dict[str, np.ndarray], metrics: dict) -> Message:
    record = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    return Message(RecordDict({"arrays": record, "metrics": MetricRecord(metrics)}), reply_to=msg)


def honest(msg: Message, context: Context) -> Message:
    """Client k returns w + (k+1) and n_k = 100 * (k + 1)."""
    k = int(context.node_config["partition-id"])
    arrays = {n: a + (k + 1) for n, a in unpack(msg.content["arrays"]).items()}
    return reply(msg, arrays, {"num-examples": 100 * (k + 1), "train-loss": float(k)})


def run(
    handler: Callable[[Message, Context], Message],
    *,
    nodes: int = 10,
    rounds: int = 1,
    **kwargs: object,
) -> tuple[RunOutcome, dict[str, np.ndarray], FakeGrid]:
    grid = FakeGrid(nodes, handler)
    strategy = FederatedAveraging(**kwargs)  # type: ignore[arg-type]
    initial = ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})
    outcome = run_rounds(strategy, grid, initial, num_rounds=rounds)
    return outcome, to_named_arrays(outcome.result.arrays), grid


def test_one_round_is_the_n_k_weighted_average_of_the_sampled_clients() -> None:
    outcome, final, grid = run(honest, fraction_train=0.3, sampling_seed=4)
    sampled = [grid.contexts[m.metadata.dst_node_id].node_config["partition-id"] for m in grid.sent]
    assert len(sampled) == 3
    offsets = np.array([k + 1 for k in sampled], dtype=float)
    weights = 100 * offsets
    np.testing.assert_allclose(
        final["w"], np.full((3, 2), np.average(offsets, weights=weights)), rtol=1e-6
    )
    record = outcome.records[1]
    assert (record.clients_sampled, record.clients_replied, record.clients_rejected) == (3, 3, 0)
    assert record.examples == int(weights.sum())
    assert record.train_loss == pytest.approx(np.average(np.array(sampled, float), weights=weights))


def test_messages_carry_the_rounds_e_b_and_decayed_eta() -> None:
    _, _, grid = run(
        honest, rounds=3, fraction_train=0.1, local_epochs=5, batch_size=0, lr=0.2, lr_decay=0.5
    )
    configs = [m.content["config"] for m in grid.sent]
    assert [c["server-round"] for c in configs] == [1, 2, 3]
    assert [c["lr"] for c in configs] == pytest.approx([0.2, 0.1, 0.05])
    assert all(c["local-epochs"] == 5 and c["batch-size"] == 0 for c in configs)


def test_c_zero_samples_one_client_the_seeds_pick() -> None:
    _, _, grid = run(honest, rounds=5, fraction_train=0.0, sampling_seed=9)
    assert len(grid.sent) == 5
    # The paper's C = 0: one client a round, the one the seeded per-round draw names.
    expected = [
        grid.node_ids[sample_clients(range(10), 1, seed=9, server_round=t)[0]] for t in range(1, 6)
    ]
    assert [m.metadata.dst_node_id for m in grid.sent] == expected


def _bad(kind: str) -> Callable[[Message, Context], Message]:
    def handler(msg: Message, context: Context) -> Message:
        if context.node_config["partition-id"] != 0:
            return honest(msg, context)
        arrays = unpack(msg.content["arrays"])
        good = {"num-examples": 100, "train-loss": 0.0}
        if kind == "raises":
            raise RuntimeError("disk on fire")
        if kind == "nan":
            arrays["w"] = arrays["w"] + np.nan
        if kind == "inf":
            arrays["b"] = arrays["b"] + np.inf
        if kind == "shape":
            arrays["w"] = np.zeros((2, 3), dtype=np.float32)
        if kind == "dtype":
            arrays["w"] = arrays["w"].astype(np.float64)
        if kind == "name":
            arrays["extra"] = np.zeros(1, dtype=np.float32)
        if kind == "no-n":
            good = {"train-loss": 0.0}
        if kind == "zero-n":
            good = {"num-examples": 0, "train-loss": 0.0}
        if kind == "negative-n":
            good = {"num-examples": -5, "train-loss": 0.0}
        if kind == "nan-loss":
            good = {"num-examples": 100, "train-loss": float("nan")}
        if kind == "inf-loss":
            good = {"num-examples": 100, "train-loss": float("inf")}
        if kind == "no-arrays":
            return Message(RecordDict({"metrics": MetricRecord(good)}), reply_to=msg)
        if kind == "huge-update":
            arrays = {n: a + 1e6 for n, a in arrays.items()}
        return reply(msg, arrays, good)

    return handler


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("raises", "disk on fire"),
        ("nan", "NaN or Inf"),
        ("inf", "NaN or Inf"),
        ("shape", "shape"),
        ("dtype", "dtype"),
        ("name", "names differ"),
        ("no-n", "must be a number"),
        ("zero-n", "positive"),
        ("negative-n", "positive"),
        ("no-arrays", "no ArrayRecord"),
        ("nan-loss", "train-loss is nan"),
        ("inf-loss", "train-loss is inf"),
        ("huge-update", "update norm"),
    ],
)
def test_a_bad_reply_is_excluded_counted_and_never_averaged_in(kind: str, reason: str) -> None:
    outcome, final, _ = run(_bad(kind), nodes=3, fraction_train=1.0, max_update_norm=1e3)
    record = outcome.records[1]
    assert (record.clients_replied, record.clients_rejected) == (3, 1)
    assert reason in record.rejections[0]
    # Only clients 1 and 2 count: offsets 2 and 3 weighted 200 and 300.
    np.testing.assert_allclose(final["w"], np.full((3, 2), (2 * 200 + 3 * 300) / 500), rtol=1e-6)
    assert np.isfinite(final["w"]).all()


def test_with_no_valid_reply_the_global_model_stays() -> None:
    def all_nan(msg: Message, context: Context) -> Message:
        arrays = {n: a + np.nan for n, a in unpack(msg.content["arrays"]).items()}
        return reply(msg, arrays, {"num-examples": 10})

    outcome, final, _ = run(all_nan, nodes=4, rounds=2, fraction_train=1.0)
    np.testing.assert_array_equal(final["w"], GLOBAL["w"])
    assert not outcome.records[1].model_updated
    assert outcome.records[2].clients_rejected == 4


def test_round_records_reach_the_hook_and_target_stops_early() -> None:
    seen: list[RoundRecord] = []
    accuracy = iter([0.1, 0.5, 0.8, 0.95, 0.99, 0.99])
    grid = FakeGrid(5, honest)
    initial = ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})
    outcome = run_rounds(
        FederatedAveraging(fraction_train=0.4),
        grid,
        initial,
        num_rounds=10,
        evaluate_fn=lambda r, a: MetricRecord({"accuracy": next(accuracy), "loss": 1.0}),
        on_round_end=seen.append,
        stopping=Stopping(target_accuracy=0.9, stop_at_target=True),
    )
    assert [r.round for r in seen] == [0, 1, 2, 3]
    assert outcome.stopped_early
    assert sorted(outcome.result.evaluate_metrics_serverapp) == [0, 1, 2, 3]
    # 2 clients a round, each sent w and returning a model of the same size.
    assert seen[1].bytes_down == seen[1].bytes_up == 2 * initial.count_bytes()


def test_waiting_for_nodes_times_out_with_a_clear_error() -> None:
    with pytest.raises(NodeWaitTimeout, match="only 2 SuperNode"):
        run(honest, nodes=2, min_nodes=3, node_wait_seconds=0.2)


def test_federated_evaluation_is_weighted_by_n_k() -> None:
    def handler(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type.startswith("train"):
            return honest(msg, context)
        k = int(context.node_config["partition-id"])
        metrics = {"num-examples": 10 * (k + 1), "eval-loss": float(k), "eval-accuracy": 0.1 * k}
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    outcome, _, _ = run(handler, nodes=3, fraction_train=1.0, fraction_evaluate=1.0)
    weights = [10, 20, 30]
    assert outcome.records[1].eval_loss == pytest.approx(np.average([0, 1, 2], weights=weights))
    assert outcome.records[1].eval_accuracy == pytest.approx(
        np.average([0, 0.1, 0.2], weights=weights)
    )


def test_non_finite_federated_evaluation_replies_are_ignored() -> None:
    def handler(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type.startswith("train"):
            return honest(msg, context)
        k = int(context.node_config["partition-id"])
        loss, accuracy = float(k), 0.1 * k
        if k == 0:
            loss = float("nan")
        if k == 1:
            accuracy = float("inf")
        metrics = {"num-examples": 10 * (k + 1), "eval-loss": loss, "eval-accuracy": accuracy}
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    outcome, _, _ = run(handler, nodes=3, fraction_train=1.0, fraction_evaluate=1.0)
    # Only client 2 counts.
    assert outcome.records[1].eval_loss == 2.0
    assert outcome.records[1].eval_accuracy == pytest.approx(0.2)


def test_sampling_follows_client_ids_not_the_random_node_ids() -> None:
    """Flower gives nodes new random ids in every run; the sampled clients must not change."""

    def identified(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type == "query.identify":
            identity = ConfigRecord({"client-id": int(context.node_config["partition-id"])})
            return Message(RecordDict({"identity": identity}), reply_to=msg)
        return honest(msg, context)

    picked = []
    for node_ids in ([5, 9, 2, 7, 1, 8, 3, 6, 4, 10], [99, 12, 57, 31, 76, 43, 18, 64, 25, 88]):
        grid = FakeGrid(10, identified, node_ids=node_ids)
        strategy = FederatedAveraging(fraction_train=0.3, sampling_seed=1)
        run_rounds(
            strategy, grid, ArrayRecord({k: Array(v) for k, v in GLOBAL.items()}), num_rounds=4
        )
        assert len(grid.queries) == 10  # asked once per node, not once per round
        picked.append(
            [grid.contexts[m.metadata.dst_node_id].node_config["partition-id"] for m in grid.sent]
        )
    assert picked[0] == picked[1]
