"""The run config's ``strategy`` and ``dp-*`` keys: Flower's strategies through our round runner.

Flower's FedAvg with every client sampled computes the same n_k-weighted mean as ours, so on
the same data, seeds and clients the two give the same curve; DP clipping bounds each update
by S and adds noise of std z S / m to the average; FedProx's clients add mu (w - w_t) to each
step's gradient.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAdam, FedProx

from protocol.config import ConfigError, parse_config
from server.results import read_metrics
from server.strategy_factory import build_strategy
from strategies.fedavg import FederatedAveraging
from strategies.records import to_named_arrays
from tasks.examples import TensorExamples
from tasks.training import train_local
from tests.fakes import FakeGrid, run_rounds, set_task_identity
from tests.test_apps import base_config, run_server

set_task_identity()


def accuracies(run_dir: Path) -> list[float]:
    return [float(r["test_accuracy"]) for r in read_metrics(run_dir)]


def test_flowers_fedavg_through_the_runner_trains_and_matches_ours(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    """C = 1: no sampling, so Flower's FedAvg and ours must average the same updates."""
    curves = {}
    for strategy in ("fedavg", "flower-fedavg"):
        config = base_config(synthetic_mnist, tmp_path, strategy=strategy, **{"run-name": strategy})
        grid = run_server(config)
        summary = json.loads((tmp_path / strategy / "summary.json").read_text())
        assert summary["status"] == "completed"
        rows = read_metrics(tmp_path / strategy)
        assert [r["clients_replied"] for r in rows[1:]] == [5, 5, 5]
        assert all(r["train_loss"] is not None and r["model_updated"] for r in rows[1:])
        assert [r["lr"] for r in rows[1:]] == [0.1, 0.1, 0.1]  # eta_t as sent
        assert len([m for m in grid.sent if m.metadata.message_type == "train"]) == 15
        curves[strategy] = accuracies(tmp_path / strategy)
    assert curves["flower-fedavg"][-1] > curves["flower-fedavg"][0] + 0.3  # it learns
    np.testing.assert_allclose(curves["flower-fedavg"], curves["fedavg"], atol=2e-3)


@pytest.mark.parametrize(
    ("strategy", "extra"),
    [
        ("fedprox", {"proximal-mu": 0.5}),
        ("fedavgm", {"server-momentum": 0.9}),
        ("fedadam", {"server-lr": 0.01}),
    ],
)
def test_each_flower_strategy_completes_a_run_and_updates_the_model(
    synthetic_mnist: Path, tmp_path: Path, strategy: str, extra: dict[str, Any]
) -> None:
    config = base_config(
        synthetic_mnist, tmp_path, strategy=strategy, **{"run-name": strategy, **extra}
    )
    grid = run_server(config)
    assert json.loads((tmp_path / strategy / "summary.json").read_text())["status"] == "completed"
    rows = read_metrics(tmp_path / strategy)
    assert all(r["clients_rejected"] == 0 and r["model_updated"] for r in rows[1:]), rows
    assert accuracies(tmp_path / strategy)[-1] != accuracies(tmp_path / strategy)[0]
    sent = [m.content["config"] for m in grid.sent if m.metadata.message_type == "train"]
    # E, B and eta_t reach the clients of any strategy; FedProx adds its mu.
    assert all(c["local-epochs"] == 2 and c["batch-size"] == 10 and c["lr"] == 0.1 for c in sent)
    if strategy == "fedprox":
        assert all(c["proximal-mu"] == 0.5 for c in sent)


def test_the_factory_maps_the_keys_onto_flowers_constructors() -> None:
    fedprox = build_strategy(
        parse_config({"strategy": "fedprox", "proximal-mu": 0.3, "fraction-train": 0.2}),
        num_clients=50,
    )
    assert isinstance(fedprox, FedProx)
    assert (fedprox.proximal_mu, fedprox.fraction_train, fedprox.min_train_nodes) == (0.3, 0.2, 1)
    fedadam = build_strategy(parse_config({"strategy": "fedadam", "lr": 0.05}), num_clients=10)
    assert isinstance(fedadam, FedAdam)
    assert (fedadam.eta, fedadam.eta_l) == (0.1, 0.05)  # server-lr 0: Flower's default eta
    wrapped = build_strategy(
        parse_config({"dp-clipping-norm": 2.0, "dp-noise-multiplier": 1.5, "fraction-train": 0.1}),
        num_clients=100,
    )
    assert isinstance(wrapped, DifferentialPrivacyServerSideFixedClipping)
    assert isinstance(wrapped.strategy, FederatedAveraging)
    assert (wrapped.clipping_norm, wrapped.noise_multiplier, wrapped.num_sampled_clients) == (
        2.0,
        1.5,
        10,
    )


@pytest.mark.parametrize(
    ("run_config", "key", "words"),
    [
        ({"proximal-mu": 0.1}, "proximal-mu", "0 unless strategy is fedprox"),
        ({"strategy": "fedprox", "server-momentum": 0.9}, "server-momentum", "fedavgm"),
        ({"server-lr": 1.0}, "server-lr", "fedavgm or fedadam"),
        ({"dp-noise-multiplier": 1.0}, "dp-noise-multiplier", "dp-clipping-norm > 0"),
        ({"strategy": "fedavgm", "fraction-train": 0.0}, "fraction-train", "C > 0"),
        ({"strategy": "fedsgd"}, "strategy", "one of fedavg, flower-fedavg, fedprox"),
    ],
)
def test_a_key_without_its_strategy_is_an_error_naming_it(
    run_config: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(run_config)
    assert raised.value.key == key and words in str(raised.value)


# --------------------------------------------------------------------- DP clipping


def moving_client(offset: float) -> Any:
    """Client k replies w_t + offset * (k + 1) everywhere, n_k = 10."""

    def handler(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type.startswith("query"):
            raise ValueError("no query handler")
        k = int(context.node_config["partition-id"])
        arrays = {
            n: a + offset * (k + 1) for n, a in to_named_arrays(msg.content["arrays"]).items()
        }
        content = RecordDict(
            {
                "arrays": ArrayRecord({n: Array(a) for n, a in arrays.items()}),
                "metrics": MetricRecord({"num-examples": 10, "train-loss": 0.0}),
            }
        )
        return Message(content, reply_to=msg)

    return handler


def dp_run(
    run_config: dict[str, Any], handler: Any, model: dict[str, np.ndarray], nodes: int
) -> dict[str, np.ndarray]:
    strategy = build_strategy(parse_config(run_config), num_clients=nodes)
    initial = ArrayRecord({n: Array(a) for n, a in model.items()})
    outcome = run_rounds(strategy, FakeGrid(nodes, handler), initial, num_rounds=1)
    assert outcome.records[1].model_updated and outcome.records[1].clients_rejected == 0
    return to_named_arrays(outcome.result.arrays)


def test_dp_clipping_bounds_every_update_by_the_clipping_norm() -> None:
    model = {"w": np.zeros((4, 5), np.float32), "b": np.zeros(5, np.float32)}
    size = 25
    clipped = dp_run({"fraction-train": 1.0, "dp-clipping-norm": 0.5}, moving_client(1.0), model, 3)
    # Every client moved each weight by k + 1 (norms 5, 10, 15); clipped to norm 0.5, each
    # update is the same vector, 0.5 / sqrt(25) per weight, and so is their mean.
    for name, value in clipped.items():
        np.testing.assert_allclose(value, np.full(model[name].shape, 0.1), rtol=1e-5)
    plain = dp_run({"fraction-train": 1.0}, moving_client(1.0), model, 3)
    np.testing.assert_allclose(plain["w"], np.full((4, 5), 2.0), rtol=1e-6)  # mean of 1, 2, 3
    assert np.sqrt(sum(np.sum(v**2) for v in clipped.values())) == pytest.approx(0.5, rel=1e-5)
    assert size == sum(v.size for v in clipped.values())


def test_dp_noise_has_std_z_times_s_over_m() -> None:
    """Tiny updates (a zero one divides by zero in Flower's clipping): the rest is the noise."""
    model = {"w": np.zeros(200_000, np.float32)}
    noised = dp_run(
        {"fraction-train": 1.0, "dp-clipping-norm": 0.5, "dp-noise-multiplier": 2.0},
        moving_client(1e-6),
        model,
        4,
    )
    noise = noised["w"].astype(np.float64) - 1e-6 * 2.5  # the mean update, k + 1 = 1..4
    # std z S / m = 2 * 0.5 / 4
    # 200,000 draws: the sample std is within 1% of the true one with overwhelming odds.
    assert noise.std() == pytest.approx(0.25, rel=0.01)
    assert abs(noise.mean()) < 0.25 * 5 / np.sqrt(noise.size)


# ------------------------------------------------------------------------- FedProx


def test_fedprox_adds_mu_times_the_distance_from_w_t_to_each_gradient() -> None:
    """Oracle: two full-batch steps by hand, w2 = w1 - eta (g(w1) + mu (w1 - w0))."""
    torch.manual_seed(0)
    inputs, labels = torch.randn(8, 3), torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    examples = TensorExamples(inputs, labels)
    start = torch.nn.Linear(3, 2)
    lr, mu = 0.5, 2.0

    def gradient(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
        loss = torch.nn.functional.cross_entropy(inputs @ w.T + b, labels)
        return torch.autograd.grad(loss, (w, b))  # type: ignore[return-value]

    w0, b0 = start.weight.detach().clone(), start.bias.detach().clone()
    gw, gb = gradient(w0, b0)
    w1, b1 = w0 - lr * gw, b0 - lr * gb  # at w0 the proximal term has no gradient
    gw, gb = gradient(w1, b1)
    w2, b2 = w1 - lr * (gw + mu * (w1 - w0)), b1 - lr * (gb + mu * (b1 - b0))

    results = {}
    for proximal_mu in (mu, 0.0):
        model = torch.nn.Linear(3, 2)
        model.load_state_dict(start.state_dict())
        rng = np.random.default_rng(0)
        train_local(
            model, examples, epochs=2, batch_size=0, lr=lr, rng=rng, proximal_mu=proximal_mu
        )
        results[proximal_mu] = (model.weight.detach(), model.bias.detach())
    torch.testing.assert_close(results[mu][0], w2)
    torch.testing.assert_close(results[mu][1], b2)
    assert not torch.allclose(results[0.0][0], w2)  # without mu, another point


def test_the_clientapp_reads_proximal_mu_from_the_message(synthetic_mnist: Path) -> None:
    from clients import app as client_app

    run_config = base_config(synthetic_mnist, synthetic_mnist.parent / "results")
    context = Context(
        run_id=1,
        node_id=5,
        node_config={"partition-id": 0, "num-partitions": 5},
        state=RecordDict(),
        run_config=run_config,
    )
    torch.manual_seed(0)
    from tasks.registry import get_task

    state = get_task("mnist-2nn").build_model().state_dict()
    weights = {}
    for mu in (0.0, 5.0):
        config = {"server-round": 1, "local-epochs": 2, "batch-size": 10, "lr": 0.1}
        if mu:
            config["proximal-mu"] = mu
        content = RecordDict({"arrays": ArrayRecord(state), "config": ConfigRecord(config)})
        message = Message(content, dst_node_id=5, message_type="train")
        reply = client_app.train(message, context)
        weights[mu] = to_named_arrays(reply.content["arrays"])
    start = {n: t.numpy() for n, t in state.items()}

    def distance(arrays: dict[str, np.ndarray]) -> float:
        return float(np.sqrt(sum(np.sum((arrays[n] - start[n]) ** 2) for n in start)))

    # A strong pull towards w_t keeps the client's weights much closer to it.
    assert distance(weights[5.0]) < 0.8 * distance(weights[0.0])
