"""The ServerApp and ClientApp wired together in-process on synthetic MNIST."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict

from clients import app as client_app
from server import app as server_app
from server.config import ConfigError
from server.results import read_metrics
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


def test_fedsgd_runs_with_the_whole_local_set_as_one_batch(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    run_server(base_config(synthetic_mnist, tmp_path, **{"batch-size": 0, "local-epochs": 1}))
    rows = read_metrics(tmp_path / "t")
    assert rows[-1]["train_loss"] is not None and rows[-1]["clients_replied"] == 5


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
    """One step with B = n equals w - eta * grad on the full local batch."""
    import torch

    from server.config import parse_config
    from tasks.mnist.task import MnistTask
    from tasks.training import train_local

    config = parse_config({"data-dir": str(synthetic_mnist)})
    data = MnistTask("mnist-2nn").client_data(config, 0, 5)
    torch.manual_seed(0)
    model = MnistTask("mnist-2nn").build_model()
    reference = MnistTask("mnist-2nn").build_model()
    reference.load_state_dict(model.state_dict())
    train_local(model, data.train, epochs=1, batch_size=0, lr=0.5, rng=np.random.default_rng(0))
    inputs, labels = data.train.batch(np.arange(len(data.train)))
    loss = torch.nn.functional.cross_entropy(reference(inputs), labels)
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    for p_new, p_old, g in zip(model.parameters(), reference.parameters(), grads, strict=True):
        torch.testing.assert_close(p_new, p_old - 0.5 * g, rtol=1e-4, atol=1e-6)
    assert len(data.train) == 120  # client 0 of 5 holds its fifth of the 600 examples
