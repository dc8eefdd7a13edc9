"""The reproduction runner's eta grid and the Table 1 renderer, on results written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import reproduce, table1
from benchmarks.paper import rows_by_name
from protocol.config import parse_config
from server.checkpoint import save_checkpoint


def write_run(
    directory: Path,
    *,
    fraction: float,
    batch: int,
    rounds_to_target: float | None,
    round_seconds: list[float],
    task: str = "mnist-2nn",
) -> None:
    directory.mkdir(parents=True)
    config = {"task": task, "fraction_train": fraction, "batch_size": batch, "local_epochs": 1}
    (directory / "config.json").write_text(json.dumps({"config": config}))
    rows = [{"round": r, "seconds": s} for r, s in enumerate([0.0, *round_seconds])]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "status": "completed",
        "rounds_to_target": rounds_to_target,
        "best_accuracy": 0.97,
        "rounds_completed": len(round_seconds),
        "wall_seconds": 1.0,
    }
    (directory / "summary.json").write_text(json.dumps(summary))


def test_later_grid_runs_stop_once_they_cannot_beat_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = rows_by_name()["table1-2nn-iid-C0.1-E1-B10"]
    calls: list[tuple[float, int]] = []
    outcome = {0.215: 32.4, 0.1: None, 0.464: 30.0}

    def fake_run_once(
        row_: Any, lr: float, rounds: int, results: Path, **_: Any
    ) -> reproduce.Attempt:
        calls.append((lr, rounds))
        directory = results / row.name / f"lr{lr}"
        summary = {"rounds_to_target": outcome[lr], "best_accuracy": 0.9}
        return reproduce.Attempt(lr, directory, summary)

    monkeypatch.setattr(reproduce, "run_once", fake_run_once)
    (tmp_path / row.name).mkdir()
    best = reproduce.reproduce_row(row, [0.215, 0.1, 0.464], 10**9, tmp_path, num_supernodes=100)
    assert calls == [(0.215, row.rounds), (0.1, 33), (0.464, 33)]
    assert best.lr == 0.464
    chosen = json.loads((tmp_path / row.name / "chosen.json").read_text())
    assert chosen["lr"] == 0.464 and chosen["grid"] == {"0.215": 32.4, "0.1": None, "0.464": 30.0}


def test_table1_cells_show_ours_the_papers_speedups_and_estimates(tmp_path: Path) -> None:
    for name, fraction, rounds, seconds in (
        ("table1-2nn-iid-C0-E1-B10", 0.0, 100.0, [1.0, 1.0, 1.0]),
        ("table1-2nn-iid-C0.1-E1-B10", 0.1, 25.0, [2.0, 2.0, 2.0]),
    ):
        run = f"{name}_lr0.1"
        write_run(
            tmp_path / name / run,
            fraction=fraction,
            batch=10,
            rounds_to_target=rounds,
            round_seconds=seconds,
        )
        chosen = {"row": name, "lr": 0.1, "run": run, "grid": {"0.1": rounds}}
        (tmp_path / name / "chosen.json").write_text(json.dumps(chosen))
    text = table1.render(tmp_path)
    line_c01 = next(line for line in text.splitlines() if line.startswith("| 0.1 |"))
    # ours / paper (our speedup over C=0 / the paper's), eta
    assert "**25.0** / 87 (4.0x / 3.6x), eta 0.1" in line_c01
    line_c0 = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    assert "**100.0** / 316, eta 0.1" in line_c0
    # Not run: 3 etas x (expected rounds x seconds per round + 20 s). Seconds per round are
    # fitted as a + b m through (1, 1.0) and (10, 2.0); expected rounds are the paper's 77
    # times the median ratio of ours to the paper's, median(100/316, 25/87).
    b = (2.0 - 1.0) / 9
    a = 1.0 - b
    ratio = (100 / 316 + 25 / 87) / 2
    expected = 3 * (77 * ratio * (a + 20 * b) + 20.0)
    line_c02 = next(line for line in text.splitlines() if line.startswith("| 0.2 |"))
    assert f"not run (est. {expected / 60:.0f} min) / 77" in line_c02


def test_a_diverged_grid_run_is_an_eta_that_misses_the_target_not_a_runner_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eta too large ends by the stall guard (all updates NaN): the grid goes on without it."""
    row = rows_by_name()["table1-2nn-iid-C0.1-E1-B10"]
    error = "NoUpdateError: no valid update in 3 consecutive rounds (2-4): 30x train-loss is nan"

    def fake_script(command: list[str], **_: Any) -> Any:
        name = command[-1].split("run-name=")[1].split()[0].strip("'\"")
        directory = tmp_path / row.name / name
        directory.mkdir(parents=True)
        summary = {
            "status": "failed",
            "error": error,
            "rounds_to_target": None,
            "best_accuracy": 0.1016,
            "rounds_completed": 4,
            "wall_seconds": 3.0,
        }
        (directory / "summary.json").write_text(json.dumps(summary))
        return type("Done", (), {"returncode": 1})()

    monkeypatch.setattr(reproduce.subprocess, "run", fake_script)
    attempt = reproduce.run_once(row, 0.464, 10, tmp_path, num_supernodes=10, tag="")
    assert not attempt.reached and attempt.summary["best_accuracy"] == 0.1016
    # A second invocation counts it as done instead of refusing the directory.
    again = reproduce.run_once(row, 0.464, 10, tmp_path, num_supernodes=10, tag="")
    assert again.summary["error"] == error
    # Any other failure still stops the runner.
    error = "ValueError: data-dir unreadable"
    with pytest.raises(SystemExit, match="failed"):
        reproduce.run_once(row, 0.1, 10, tmp_path, num_supernodes=10, tag="")


def test_table1_shows_the_default_runs_not_the_ablations(tmp_path: Path) -> None:
    row = rows_by_name()["table1-2nn-iid-C0.1-E1-B10"]
    for key, init, rounds in ((row.name, "pytorch", 32.7), (f"{row.name}-glorot", "glorot", 25.9)):
        write_run(
            tmp_path / key / "run",
            fraction=0.1,
            batch=10,
            rounds_to_target=rounds,
            round_seconds=[1.0],
        )
        chosen = {"row": row.name, "init": init, "lr": 0.1, "run": "run", "grid": {"0.1": rounds}}
        (tmp_path / key / "chosen.json").write_text(json.dumps(chosen))
    cell = next(line for line in table1.render(tmp_path).splitlines() if "| 0.1 |" in line)
    assert "**32.7**" in cell and "25.9" not in cell


def test_a_grid_run_stopped_part_way_resumes_from_its_checkpoint_when_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with a checkpoint but no final summary (a session that ended mid-run) is handed
    ``resume-from`` of its own directory; one stopped before its first checkpoint restarts."""
    row = rows_by_name()["table1-2nn-iid-C0.1-E1-B10"]
    stopped = tmp_path / row.name / f"{row.name}_lr0.1"
    stopped.mkdir(parents=True)
    config = parse_config({**row.run_config(), "lr": 0.1, "num-server-rounds": 10})
    save_checkpoint(stopped, server_round=4, arrays={"w": np.zeros(2)}, config=config)
    early = tmp_path / row.name / f"{row.name}_lr0.215"
    early.mkdir(parents=True)
    (early / "metrics.jsonl").write_text('{"round": 0}\n')
    commands: list[str] = []

    def fake_script(command: list[str], **_: Any) -> Any:
        commands.append(command[-1])
        name = command[-1].split("run-name=")[1].split()[0].strip("'\"")
        directory = tmp_path / row.name / name
        assert not (directory / "metrics.jsonl").exists() or "resume-from" in command[-1]
        directory.mkdir(parents=True, exist_ok=True)
        summary = {
            "status": "completed",
            "rounds_to_target": 8.0,
            "best_accuracy": 0.97,
            "rounds_completed": 10,
            "wall_seconds": 3.0,
        }
        (directory / "summary.json").write_text(json.dumps(summary))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(reproduce.subprocess, "run", fake_script)
    reproduce.run_once(row, 0.1, 10, tmp_path, num_supernodes=10, tag="")
    reproduce.run_once(row, 0.215, 10, tmp_path, num_supernodes=10, tag="")
    assert f"resume-from='{stopped}'" in commands[0]
    assert "resume-from" not in commands[1]
