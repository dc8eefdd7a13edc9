"""Failures, stragglers, checkpoints and resume, in-process on synthetic MNIST."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode

from clients import app as client_app
from clients.app import RoundDeadlinePassed
from protocol.packing import unpack
from server import app as server_app
from server.checkpoint import CheckpointError, load_checkpoint
from server.config import ConfigError
from server.results import read_metrics
from tests.fakes import FakeGrid, fail_training_round, set_task_identity
from tests.test_apps import base_config, dispatch, run_server

set_task_identity()


def crashing_grid(run_config: dict[str, Any], crash_round: int) -> FakeGrid:
    """A grid whose SuperLink 'dies' when round ``crash_round`` is sent."""
    return fail_training_round(
        FakeGrid(5, dispatch, run_config), crash_round, ConnectionError("killed")
    )


def context_for(run_config: dict[str, Any]) -> Context:
    return Context(run_id=3, node_id=0, node_config={}, state=RecordDict(), run_config=run_config)


def test_a_resumed_run_repeats_the_uninterrupted_one(synthetic_mnist: Path, tmp_path: Path) -> None:
    common = {"num-server-rounds": 5, "fraction-train": 0.4, "checkpoint-every": 2}
    run_server(base_config(synthetic_mnist, tmp_path, **common, **{"run-name": "whole"}))

    broken = base_config(synthetic_mnist, tmp_path, **common, **{"run-name": "broken"})
    with pytest.raises(ConnectionError):
        server_app.main(crashing_grid(broken, crash_round=4), context_for(broken))
    assert load_checkpoint(tmp_path / "broken").round == 2  # round 3 is lost, as promised
    assert [r["round"] for r in read_metrics(tmp_path / "broken")] == [0, 1, 2, 3]

    resumed = {**broken, "resume-from": str(tmp_path / "broken")}
    server_app.main(FakeGrid(5, dispatch, resumed), context_for(resumed))

    whole, again = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "broken")
    keys = ("round", "test_accuracy", "test_loss", "train_loss", "clients_sampled", "bytes_up")
    assert [[r[k] for k in keys] for r in again] == [[r[k] for k in keys] for r in whole]
    final_whole, final_again = (
        load_checkpoint(tmp_path / "whole"),
        load_checkpoint(tmp_path / "broken"),
    )
    assert final_whole.round == final_again.round == 5
    for name, value in final_whole.arrays.items():
        np.testing.assert_array_equal(value, final_again.arrays[name])
    summary = json.loads((tmp_path / "broken" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 5
    assert len(json.loads((tmp_path / "broken" / "config.json").read_text())["resumed"]) == 1


def test_resume_refuses_another_experiment(synthetic_mnist: Path, tmp_path: Path) -> None:
    run_server(base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 2}))
    other = base_config(
        synthetic_mnist,
        tmp_path,
        **{"num-server-rounds": 4, "lr": 0.5, "resume-from": str(tmp_path / "t")},
    )
    with pytest.raises(ConfigError, match=r"'lr' = 0\.5"):
        run_server(other)
    done = base_config(
        synthetic_mnist, tmp_path, **{"num-server-rounds": 2, "resume-from": str(tmp_path / "t")}
    )
    with pytest.raises(ConfigError, match="more than the checkpoint's round 2"):
        run_server(done)


def test_a_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"checkpoint\.npz"):
        load_checkpoint(tmp_path)


def test_thirty_percent_injected_failures_still_converge(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    run_server(
        base_config(
            synthetic_mnist,
            tmp_path,
            **{"num-server-rounds": 8, "fraction-train": 1.0, "inject-failure-rate": 0.3},
        ),
        nodes=10,
    )
    rows = read_metrics(tmp_path / "t")[1:]
    rejected = sum(r["clients_rejected"] for r in rows)
    assert 0.15 * 80 < rejected < 0.45 * 80
    assert all("injected failure" in reason for r in rows for reason in r["rejections"])
    assert rows[-1]["test_accuracy"] > 0.8


def test_below_min_replies_the_round_is_skipped_and_the_run_goes_on(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    run_server(
        base_config(
            synthetic_mnist,
            tmp_path,
            **{
                "num-server-rounds": 3,
                "fraction-train": 1.0,
                "inject-failure-rate": 0.5,
                "min-replies": 4,
                "max-rounds-without-update": 0,
            },
        )
    )
    rows = read_metrics(tmp_path / "t")[1:]
    for row in rows:
        valid = row["clients_replied"] - row["clients_rejected"]
        assert row["model_updated"] == (valid >= 4)
    assert not all(r["model_updated"] for r in rows)
    skipped = [i for i, r in enumerate(rows) if not r["model_updated"]]
    for i in skipped:  # a skipped round leaves the model, hence the accuracy, unchanged
        previous = read_metrics(tmp_path / "t")[i]
        assert rows[i]["test_accuracy"] == previous["test_accuracy"]


def test_an_implausible_n_k_is_rejected(synthetic_mnist: Path, tmp_path: Path) -> None:
    """n_k above max-num-examples is rejected with its value and the bound; n_k = the bound is not.

    Each honest client holds 120 examples (600 / 5) and max-num-examples is 120; client 0 says
    10**9. The model is the n_k-weighted average of the four honest replies alone.
    """
    honest: list[dict[str, np.ndarray]] = []

    def liar(msg: Message, context: Context) -> Message:
        reply = dispatch(msg, context)
        if msg.metadata.message_type == "train":
            if context.node_config["partition-id"] == 0:
                reply.content["metrics"]["num-examples"] = 10**9
            else:
                assert reply.content["metrics"]["num-examples"] == 120
                honest.append(unpack(reply.content["arrays"]))
        return reply

    run_server(
        base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 1, "max-num-examples": 120}),
        handler=liar,
    )
    row = read_metrics(tmp_path / "t")[-1]
    assert (row["clients_replied"], row["clients_rejected"], row["model_updated"]) == (5, 1, True)
    assert row["rejections"] == [
        "node 1000: num-examples=1000000000 exceeds the plausible maximum 120"
    ]
    assert len(honest) == 4
    checkpoint = load_checkpoint(tmp_path / "t")
    assert checkpoint.round == 1
    for name, value in checkpoint.arrays.items():
        expected = np.mean(np.stack([arrays[name] for arrays in honest]), axis=0)
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)


class LateGrid(FakeGrid):
    """Replies of ``late`` partitions miss the round deadline: a SuperLink never hands them over."""

    def __init__(self, late: set[int], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.late_nodes = {
            n for n, c in self.contexts.items() if c.node_config["partition-id"] in late
        }
        self.on_time: list[Message] = []

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(super().pull_messages(message_ids))
        trained = [r for r in replies if r.metadata.message_type == "train"]
        on_time = [r for r in trained if r.metadata.src_node_id not in self.late_nodes]
        self.on_time.extend(on_time)
        return [r for r in replies if r not in trained or r in on_time]


def test_a_round_averages_only_the_replies_within_its_deadline(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    config = base_config(
        synthetic_mnist,
        tmp_path,
        **{"num-server-rounds": 1, "round-timeout": 0.5, "checkpoint-every": 1},
    )
    grid = LateGrid({0, 3}, 5, dispatch, config)
    server_app.main(grid, context_for(config))

    assert {m.metadata.ttl for m in grid.sent} == {1.0}  # messages expire a timeout later
    row = read_metrics(tmp_path / "t")[-1]
    assert (row["clients_sampled"], row["clients_replied"], row["model_updated"]) == (5, 3, True)
    weights = [int(r.content["metrics"]["num-examples"]) for r in grid.on_time]
    global_model = load_checkpoint(tmp_path / "t").arrays
    for name, value in global_model.items():
        replies = [unpack(r.content["arrays"])[name] for r in grid.on_time]
        expected = np.average(np.stack(replies), axis=0, weights=weights)
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)


def test_an_error_the_superlink_writes_for_a_vanished_node_names_that_node(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    superlink_node_id = 1  # what a SuperLink-made error reply carries as its source

    class VanishedGrid(FakeGrid):
        def send_and_receive(
            self, messages: Iterable[Message], *, timeout: float | None = None
        ) -> Iterable[Message]:
            messages = list(messages)
            replies = list(super().send_and_receive(messages, timeout=timeout))
            for i, message in enumerate(messages):
                if (
                    message.metadata.message_type == "train"
                    and message.metadata.dst_node_id == 1002
                ):
                    gone = Message(
                        Error(ErrorCode.NODE_UNAVAILABLE, "Error: Node Unavailable"),
                        reply_to=message,
                    )
                    gone.metadata.__dict__["_src_node_id"] = superlink_node_id
                    replies[i] = gone
            return replies

    config = base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 1})
    server_app.main(VanishedGrid(5, dispatch, config), context_for(config))

    row = read_metrics(tmp_path / "t")[-1]
    assert (row["clients_replied"], row["clients_rejected"], row["model_updated"]) == (5, 1, True)
    assert row["rejections"] == ["node 1002: error code 5: Error: Node Unavailable"]


def test_a_client_skips_a_message_whose_round_deadline_passed() -> None:
    stale = Message(RecordDict(), dst_node_id=1000, message_type="train", ttl=7.5, group_id="4")
    stale.metadata.created_at = time.time() - 7.5 - 20
    context = Context(run_id=1, node_id=1000, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(RoundDeadlinePassed, match=r"round 4 arrived 2\d\.\d s after its deadline"):
        client_app.train(stale, context)
