"""Runs that cannot learn end as failed; results files stay strict JSON (issue 14, items 4, 6)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from flwr.app import Context, Message

from clients.node_data import NodeDataError
from server.config import parse_config
from server.results import ResultsWriter, load_run
from server.round_record import RoundRecord
from server.stopping import NoUpdateError, StallGuard
from tests.test_apps import base_config, dispatch, run_server


def strict_loads(text: str) -> object:
    """json.loads that refuses NaN and Infinity, as jq and browsers do."""

    def refuse(constant: str) -> object:
        raise ValueError(f"bare {constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def stalled(round_: int, *reasons: str) -> RoundRecord:
    return RoundRecord(
        round=round_,
        clients_sampled=len(reasons),
        clients_replied=len(reasons),
        clients_rejected=len(reasons),
        rejections=[f"node {100 + i}: {r}" for i, r in enumerate(reasons)],
    )


def test_the_guard_fails_after_n_consecutive_rounds_and_summarises_reasons() -> None:
    guard = StallGuard(3)
    guard(RoundRecord(round=0))  # the initial evaluation does not count
    guard(stalled(1, "bad data", "bad data"))
    guard(stalled(2, "bad data", "timeout"))
    with pytest.raises(NoUpdateError) as caught:
        guard(stalled(3, "bad data", "bad data"))
    message = str(caught.value)
    assert "3 consecutive rounds (1-3; max-rounds-without-update=3)" in message
    assert "6 of 6 sampled clients' replies rejected: 5x bad data; 1x timeout" in message


def test_reasons_that_differ_only_in_numbers_count_as_one() -> None:
    guard = StallGuard(2)
    guard(stalled(1, "injected failure in round 1 on partition 4"))
    with pytest.raises(NoUpdateError, match=r"2x injected failure in round 1 on partition 4$"):
        guard(stalled(2, "injected failure in round 2 on partition 0"))


def test_an_update_resets_the_count_and_zero_turns_the_guard_off() -> None:
    guard = StallGuard(2)
    guard(stalled(1, "x"))
    guard(RoundRecord(round=2, model_updated=True))
    guard(stalled(3, "x"))
    with pytest.raises(NoUpdateError):
        guard(stalled(4, "x"))
    off = StallGuard(0)
    for r in range(1, 20):
        off(stalled(r, "x"))


def test_a_run_whose_every_reply_is_rejected_ends_failed_with_the_reasons(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    def wrong_data(msg: Message, context: Context) -> Message:
        if msg.metadata.message_type.startswith("train"):
            raise NodeDataError("data-path prepared for partition 'iid', the run wants 'noniid'")
        return dispatch(msg, context)

    config = base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 10})
    with pytest.raises(NoUpdateError, match="prepared for partition"):
        run_server(config, handler=wrong_data)
    run = load_run(tmp_path / "t")
    assert run.summary["status"] == "failed"
    assert run.summary["error"].startswith("NoUpdateError: no valid update in 3 consecutive")
    assert "15 of 15 sampled clients' replies rejected" in run.summary["error"]
    assert [r["round"] for r in run.rows] == [0, 1, 2, 3]
    assert not any(r["model_updated"] for r in run.rows)


def test_non_finite_values_are_written_as_null_never_as_bare_nan(tmp_path: Path) -> None:
    config = parse_config({"results-dir": str(tmp_path), "run-name": "nan"})
    writer = ResultsWriter.create(config, run_id=1, num_clients=2, extra={"x": math.inf})
    writer.append_round(
        RoundRecord(round=1, test_accuracy=0.5, test_loss=math.nan, train_loss=math.inf)
    )
    writer.finish(status="completed")
    directory = tmp_path / "nan"
    rows = [strict_loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["test_loss"] is None and rows[0]["train_loss"] is None  # type: ignore[index]
    assert rows[0]["test_accuracy"] == 0.5  # type: ignore[index]
    assert strict_loads((directory / "config.json").read_text())["x"] is None  # type: ignore[index]
    assert strict_loads((directory / "summary.json").read_text())["final_accuracy"] == 0.5  # type: ignore[index]
