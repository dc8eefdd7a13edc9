"""The ServerApp and ClientApp wired together in-process on synthetic MNIST."""

from __future__ import annotations

import gzip
import json
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from clients import app as client_app
from protocol.packing import unpack
from server import app as server_app
from server.checkpoint import load_checkpoint
from server.config import ConfigError
from server.results import read_metrics
from tasks.mnist.task import MnistTask
from tests.fakes import FakeGrid, fail_training_round, set_task_identity

set_task_identity()


def dispatch(msg: Message, context: Context) -> Message:
    if msg.metadata.message_type.startswith("train"):
        return client_app.train(msg, context)
    if msg.metadata.message_type.startswith("query"):
        return client_app.identify(msg, context)
    return client_app.local_evaluate(msg, context)


def run_server(run_config: dict[str, Any], nodes: int = 5, handler: Any = dispatch) -> FakeGrid:
    grid = FakeGrid(nodes, handler, run_config)
    context = Context(
        run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config=run_config
    )
    server_app.main(grid, context)
    return grid


def base_config(data: Path, results: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data-dir": str(data),
        "results-dir": str(results),
        "run-name": "t",
        "num-server-rounds": 3,
        "fraction-train": 1.0,
        "local-epochs": 2,
        "batch-size": 10,
        "lr": 0.1,
        "client-threads": 1,
        **extra,
    }


def test_a_run_learns_and_writes_the_results_contract(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    run_server(base_config(synthetic_mnist, tmp_path, **{"fraction-evaluate": 1.0}))
    run_dir = tmp_path / "t"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["num_clients"] == 5 and config["config"]["local_epochs"] == 2
    rows = read_metrics(run_dir)
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    for key in (
        "test_accuracy",
        "test_loss",
        "train_loss",
        "clients_sampled",
        "clients_replied",
        "clients_rejected",
        "bytes_down",
        "bytes_up",
        "seconds",
    ):
        assert key in rows[-1]
    assert rows[-1]["clients_replied"] == 5 and rows[-1]["clients_rejected"] == 0
    assert rows[-1]["eval_accuracy"] is not None
    for row in rows[1:]:  # the parts of a round are measured within it
        parts = (row["clients_seconds"], row["aggregate_seconds"], row["evaluate_seconds"])
        assert all(p > 0 for p in parts) and sum(parts) <= row["seconds"], row
    assert rows[-1]["test_accuracy"] > max(0.5, rows[0]["test_accuracy"] + 0.3)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["best_accuracy"] == max(r["test_accuracy"] for r in rows)
    assert summary["final_accuracy"] == rows[-1]["test_accuracy"]
    assert summary["total_bytes"] == sum(r["bytes_down"] + r["bytes_up"] for r in rows)


def test_same_seed_same_run(synthetic_mnist: Path, tmp_path: Path) -> None:
    accuracies = []
    for name in ("a", "b"):
        run_server(
            base_config(synthetic_mnist, tmp_path, **{"run-name": name, "fraction-train": 0.4})
        )
        accuracies.append([r["test_accuracy"] for r in read_metrics(tmp_path / name)])
    assert accuracies[0] == accuracies[1]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes, read by hand: magic 0 0 8 ndim, ndim big-endian sizes."""
    raw = gzip.decompress(path.read_bytes())
    assert raw[:3] == b"\x00\x00\x08"
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_train_set(data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All training examples, standardised with MNIST's mean 0.1307 and sd 0.3081."""
    images = read_idx(data / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = read_idx(data / "train-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy((images - 0.1307) / 0.3081), torch.from_numpy(labels)


def full_batch_step(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, lr: float
) -> float:
    """The oracle: w <- w - lr * grad of the mean cross-entropy, by autograd; the loss before."""
    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    with torch.no_grad():
        for parameter, grad in zip(model.parameters(), grads, strict=True):
            parameter.sub_(lr * grad)
    return loss.item()


def test_fedsgd_runs_with_the_whole_local_set_as_one_batch(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    """FedSGD (C = 1, E = 1, B = inf) over K = 7 IID clients is full-batch gradient descent.

    sum_k n_k/n (w - eta g_k) = w - eta g: each round's model is one step of eta = 0.1 on the
    mean loss over all 600 training examples, and its train_loss that mean loss before the step.
    600 = 5 x 86 + 2 x 85: only the n_k-weighted average gives that step.
    """
    grid = run_server(
        base_config(
            synthetic_mnist,
            tmp_path,
            **{
                "batch-size": 0,
                "local-epochs": 1,
                "num-server-rounds": 2,
                "checkpoint-every": 1,
                "device": "cpu",  # the oracle's arithmetic, to float32 rounding
            },
        ),
        nodes=7,
    )
    rows = read_metrics(tmp_path / "t")
    inputs, labels = mnist_train_set(synthetic_mnist)
    assert len(labels) == 600
    first = [m for m in grid.sent if m.content["config"]["server-round"] == 1]
    assert len(first) == 7
    model = MnistTask("mnist-2nn").build_model()
    model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in unpack(first[0].content["arrays"]).items()}
    )
    for server_round in (1, 2):
        loss = full_batch_step(model, inputs, labels, 0.1)
        row = rows[server_round]
        assert (row["clients_replied"], row["clients_rejected"]) == (7, 0)
        assert row["train_loss"] == pytest.approx(loss, rel=1e-6), server_round
    checkpoint = load_checkpoint(tmp_path / "t")
    assert checkpoint.round == 2
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(checkpoint.arrays[name], value.numpy(), rtol=1e-4, atol=1e-6)


def test_eval_every_skips_central_evaluation_but_not_the_last_round(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    run_server(base_config(synthetic_mnist, tmp_path, **{"eval-every": 2}))
    rows = read_metrics(tmp_path / "t")
    assert [r["test_accuracy"] is not None for r in rows] == [True, False, True, True]


def test_a_client_without_partition_config_is_rejected_not_fatal(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    def handler(msg: Message, context: Context) -> Message:
        if context.node_id == 1000:
            context.node_config.pop("partition-id")
        return dispatch(msg, context)

    run_server(base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 1}), handler=handler)
    row = read_metrics(tmp_path / "t")[-1]
    assert row["clients_rejected"] == 1 and "partition-id" in row["rejections"][0]


def test_a_bad_config_fails_before_any_round_and_says_so_in_one_line(
    synthetic_mnist: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flwr")
    with pytest.raises(ConfigError, match="'batch-size' = -3"):
        run_server(base_config(synthetic_mnist, tmp_path, **{"batch-size": -3}))
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["rounds_completed"] == 0
    assert summary["error"] == (
        "ConfigError: run config 'batch-size' = -3 is invalid: "
        "expected B, an integer >= 1, or 0 for B = inf"
    )
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said[0] == f"run failed before round 1: {summary['error']}"
    saved = json.loads((tmp_path / "t" / "config.json").read_text())
    assert saved["run_config"]["batch-size"] == -3 and "config" not in saved


def test_missing_data_fails_before_any_round_and_writes_a_failed_summary(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="train-images-idx3-ubyte"):
        run_server(base_config(tmp_path / "nowhere", tmp_path))
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["status"] == "failed" and "train-images-idx3-ubyte" in summary["error"]
    assert json.loads((tmp_path / "t" / "config.json").read_text())["config"]["batch_size"] == 10


def test_a_config_too_broken_to_name_its_directory_still_gets_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="'run-name'"):
        run_server({"run-name": "a/b", "batch-size": 10})
    (directory,) = (tmp_path / "results").iterdir()
    assert directory.name.startswith("failed_") and directory.name.endswith("_7")
    assert json.loads((directory / "summary.json").read_text())["status"] == "failed"


def test_a_failing_run_keeps_its_rounds_and_says_failed(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    grid = fail_training_round(
        FakeGrid(5, dispatch, base_config(synthetic_mnist, tmp_path)),
        2,
        ConnectionError("SuperLink went away"),
    )
    context = Context(
        run_id=7,
        node_id=0,
        node_config={},
        state=RecordDict(),
        run_config=base_config(synthetic_mnist, tmp_path),
    )
    with pytest.raises(ConnectionError):
        server_app.main(grid, context)
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["status"] == "failed" and "SuperLink went away" in summary["error"]
    assert summary["rounds_completed"] == 1
    assert [r["round"] for r in read_metrics(tmp_path / "t")] == [0, 1]


def test_client_training_is_plain_sgd_from_the_received_weights(synthetic_mnist: Path) -> None:
    """The ClientApp's train: E = 2 steps with B = n from the message's w, not the run config's.

    The run config says E = 1, B = 10, eta = 0.1; the message says E = 2, B = 0 (inf),
    eta = 0.5, and carries weights of another seed than the run's model seed. The reply must
    hold w2 = w1 - 0.5 g(w1), w1 = w - 0.5 g(w), with n_k = 120 and the mean of the two losses.
    """
    from server.config import parse_config

    run_config = {
        "data-dir": str(synthetic_mnist),
        "local-epochs": 1,
        "batch-size": 10,
        "device": "cpu",
    }
    torch.manual_seed(123)
    sent = MnistTask("mnist-2nn").build_model()
    message = Message(
        RecordDict(
            {
                "arrays": ArrayRecord(sent.state_dict()),
                "config": ConfigRecord(
                    {"server-round": 1, "local-epochs": 2, "batch-size": 0, "lr": 0.5}
                ),
            }
        ),
        dst_node_id=1000,
        message_type="train",
        group_id="1",
    )
    context = Context(
        run_id=7,
        node_id=1000,
        node_config={"partition-id": 0, "num-partitions": 5},
        state=RecordDict(),
        run_config=run_config,
    )
    reply = client_app.train(message, context)

    data = MnistTask("mnist-2nn").client_data(parse_config(run_config), 0, 5)
    inputs, labels = data.train.batch(np.arange(len(data.train)))
    losses = [full_batch_step(sent, inputs, labels, 0.5) for _ in range(2)]
    metrics = reply.content["metrics"]
    assert metrics["num-examples"] == 120  # client 0 of 5 holds its fifth of the 600 examples
    assert metrics["train-loss"] == pytest.approx(sum(losses) / 2, rel=1e-5)
    returned = unpack(reply.content["arrays"])
    expected = sent.state_dict()
    assert list(returned) == list(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(returned[name], value.numpy(), rtol=1e-4, atol=1e-6)
