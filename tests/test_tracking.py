"""W&B tracking, plots and the compare command, on in-process runs of synthetic MNIST."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from flwr.app import Context, RecordDict
from flwr.common.config import flatten_dict, get_project_config
from PIL import Image

from server import app as server_app
from server import compare, plots
from server.config import ConfigError, parse_config
from server.results import ResultsWriter, load_run, read_metrics
from server.round_record import RoundRecord
from server.tracking import MODEL_FILE
from server.wandb_config import WandbConfig, parse_wandb_config
from server.wandb_offline import OfflineRun, read_offline_run
from tasks.mnist.task import MnistTask
from tests.conftest import REPO
from tests.fakes import FakeGrid, fail_training_round
from tests.test_apps import base_config, dispatch, run_server


@pytest.fixture
def flwr_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="flwr")
    return caplog


def offline_run(run_dir: Path) -> OfflineRun:
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return read_offline_run(runs[0])


def tracked_config(data: Path, results: Path, **extra: Any) -> dict[str, Any]:
    return base_config(data, results, **{"num-server-rounds": 2, "wandb.mode": "offline", **extra})


# ------------------------------------------------------------------ W&B runs


def test_an_offline_wandb_run_holds_history_config_summary_and_model(
    synthetic_mnist: Path, tmp_path: Path, flwr_warnings: pytest.LogCaptureFixture
) -> None:
    run_server(tracked_config(synthetic_mnist, tmp_path, **{"wandb.tags": "smoke, ci"}), nodes=3)
    run_dir = tmp_path / "t"
    rows = read_metrics(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    run = offline_run(run_dir)

    assert [h["_step"] for h in run.history] == [r["round"] for r in rows] == [0, 1, 2]
    for logged, row in zip(run.history, rows, strict=True):
        assert logged["test/accuracy"] == pytest.approx(row["test_accuracy"])
        assert logged["test/loss"] == pytest.approx(row["test_loss"])
        assert logged["clients/replied"] == row["clients_replied"]
        assert logged["clients/rejected"] == row["clients_rejected"]
        assert logged["comm/bytes_up"] == row["bytes_up"]
        assert logged["comm/bytes_down"] == row["bytes_down"]
        assert logged["time/round_seconds"] == pytest.approx(row["seconds"])
    assert run.history[2]["train/loss"] == pytest.approx(rows[2]["train_loss"])
    assert "train/loss" not in run.history[0]  # round 0 is the initial model, not trained
    assert run.history[-1]["comm/bytes_total"] == summary["total_bytes"]

    assert run.config["lr"] == 0.1 and run.config["local_epochs"] == 2
    assert run.config["num_clients"] == 3 and run.config["flwr_run_id"] == "7"
    assert run.config["flwr_version"] and run.config["torch_version"]
    assert run.config["seeds"] == parse_config({"seed": 0}).seeds
    for key in ("best_accuracy", "final_accuracy", "rounds_to_target", "total_bytes", "status"):
        assert run.summary[key] == summary[key], key
    assert run.summary["status"] == "completed" and run.exit_code == 0

    assert (run.group, run.job_type, run.display_name) == ("mnist-2nn_iid", "C1_E2_B10", "t")
    assert run.tags == ["mnist-2nn", "iid", "C=1", "E=2", "B=10", "lr=0.1", "smoke", "ci"]
    [artifact] = run.artifacts
    assert artifact["type"] == "model" and artifact["metadata"]["rounds_completed"] == 2
    model_path = Path(artifact["files"][MODEL_FILE])
    assert model_path.parent == run_dir / "wandb"
    state = torch.load(model_path)
    reference = MnistTask("mnist-2nn").build_model().state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in reference.items()}
    assert "wandb sync " + str(run_dir / "wandb" / "offline-run-") in flwr_warnings.text


def test_a_failed_run_is_a_failed_wandb_run_with_its_rounds(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    config = tracked_config(synthetic_mnist, tmp_path)
    grid = fail_training_round(
        FakeGrid(2, dispatch, config), 2, ConnectionError("SuperLink went away")
    )
    context = Context(run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config=config)
    with pytest.raises(ConnectionError):
        server_app.main(grid, context)
    run = offline_run(tmp_path / "t")
    assert [h["_step"] for h in run.history] == [0, 1]
    assert run.summary["status"] == "failed" and "SuperLink went away" in run.summary["error"]
    assert run.exit_code == 1
    assert run.artifacts == []  # no final model of a failed run


def test_wandb_init_failure_is_a_warning_and_the_run_goes_on(
    synthetic_mnist: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flwr_warnings: pytest.LogCaptureFixture,
) -> None:
    import wandb

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("No space left on device")

    monkeypatch.setattr(wandb, "init", refuse)
    run_server(tracked_config(synthetic_mnist, tmp_path), nodes=2)
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["rounds_completed"] == 2
    assert (tmp_path / "t" / plots.RUN_PLOT).is_file()
    assert "W&B init (offline) failed (OSError: No space left on device)" in flwr_warnings.text


def test_wandb_log_failures_warn_once_and_the_run_goes_on(
    synthetic_mnist: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flwr_warnings: pytest.LogCaptureFixture,
) -> None:
    from wandb.sdk.wandb_run import Run

    def full_disk(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(Run, "log", full_disk)
    run_server(tracked_config(synthetic_mnist, tmp_path), nodes=2)
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["status"] == "completed" and len(read_metrics(tmp_path / "t")) == 3
    assert flwr_warnings.text.count("W&B log failed") == 1  # not once per round
    assert offline_run(tmp_path / "t").summary["best_accuracy"] == summary["best_accuracy"]


def test_an_unreachable_wandb_server_falls_back_to_offline(
    synthetic_mnist: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flwr_warnings: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # a well-formed, wrong key
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    config = tracked_config(
        synthetic_mnist,
        tmp_path,
        **{"wandb.mode": "online", "wandb.init-timeout": 1.0, "num-server-rounds": 1},
    )
    run_server(config, nodes=2)
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["status"] == "completed"
    assert "W&B init (online) failed" in flwr_warnings.text
    assert [h["_step"] for h in offline_run(tmp_path / "t").history] == [0, 1]


def test_disabled_tracking_writes_no_wandb_files(
    synthetic_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")  # mode "auto" honours the environment
    run_server(base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 1}), nodes=2)
    assert not (tmp_path / "t" / "wandb").exists()
    assert (tmp_path / "t" / plots.RUN_PLOT).is_file()


# -------------------------------------------------------------------- config


def test_pyproject_defaults_parse() -> None:
    flat = flatten_dict(get_project_config(REPO)["tool"]["flwr"]["app"]["config"])
    assert parse_wandb_config(flat) == WandbConfig()
    parse_config(flat)  # the experiment parser leaves the wandb.* keys alone


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, "offline"),
        ({"WANDB_API_KEY": "k"}, "online"),
        ({"WANDB_IDENTITY_TOKEN_FILE": "/run/token"}, "online"),
        ({"WANDB_API_KEY": "k", "WANDB_MODE": "disabled"}, "disabled"),
        ({"WANDB_MODE": "dryrun"}, "offline"),
        ({"WANDB_MODE": "online"}, "online"),
    ],
)
def test_auto_mode_follows_the_environment(environ: dict[str, str], mode: str) -> None:
    assert WandbConfig().resolved_mode(environ) == mode


def test_an_explicit_mode_wins_over_the_environment() -> None:
    config = parse_wandb_config({"wandb.mode": "Offline"})
    assert config.resolved_mode({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k"}) == "offline"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("wandb.mode", "cloud", "one of auto, online, offline, disabled"),
        ("wandb.project", "", "a name of at most 128 characters"),
        ("wandb.group", "a/b", "without /"),
        ("wandb.tags", "ok," + "x" * 65, "at most 64 characters each"),
        ("wandb.log-model", "yes", "true or false"),
        ("wandb.init-timeout", 0, "> 0"),
        ("wandb.projekt", "x", "a known key: wandb.{mode, project"),
    ],
)
def test_bad_wandb_values_name_key_value_and_allowed(key: str, value: Any, allowed: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' = {value!r}") as error:
        parse_wandb_config({key: value})
    assert allowed in error.value.allowed


def test_credentials_in_the_run_config_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError, match="WANDB_API_KEY") as error:
        parse_wandb_config({"wandb.api-key": "secret-key-123"})
    assert "secret-key-123" not in str(error.value)


def test_group_job_type_and_tags_derive_from_the_experiment() -> None:
    experiment = parse_config({"task": "mnist-cnn", "partition": "noniid", "batch-size": 0})
    derived = WandbConfig()
    assert derived.run_group(experiment) == "mnist-cnn_noniid"
    assert derived.run_job_type(experiment) == "C0.1_E1_Binf"
    chosen = parse_wandb_config({"wandb.group": "table2", "wandb.job-type": "row3"})
    assert (chosen.run_group(experiment), chosen.run_job_type(experiment)) == ("table2", "row3")


# ----------------------------------------------------------- plots, compare


def write_run(results: Path, name: str, lr: float, accuracies: list[float]) -> Path:
    """A run directory written by the real ResultsWriter from made-up rounds."""
    config = parse_config({"run-name": name, "results-dir": str(results), "lr": lr})
    writer = ResultsWriter.create(config, run_id=1, num_clients=100, extra={})
    for r, accuracy in enumerate(accuracies):
        writer.append_round(
            RoundRecord(round=r, test_accuracy=accuracy, bytes_down=1000 * r, bytes_up=900 * r)
        )
    writer.finish(status="completed")
    return writer.directory


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()  # raises on a truncated or corrupt file
        assert image.format == "PNG"
        return image.size


def expected_size() -> tuple[int, int]:
    width, height = plots.SIZE_INCHES
    return round(width * plots.DPI), round(height * plots.DPI)


def test_the_run_plot_is_a_png_of_the_expected_size(synthetic_mnist: Path, tmp_path: Path) -> None:
    run_server(base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 2}), nodes=2)
    path = tmp_path / "t" / plots.RUN_PLOT
    assert png_size(path) == expected_size()  # the whole figure, not cropped to its content
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 10  # drawn on, not a blank canvas


def test_compare_writes_a_table_matching_the_summaries_and_a_plot(tmp_path: Path) -> None:
    runs = [
        write_run(tmp_path / "runs", "slow", 0.05, [0.1, 0.9, 0.95, 0.96]),
        write_run(tmp_path / "runs", "fast", 0.2, [0.1, 0.95, 0.975, 0.98]),
    ]
    assert compare.main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    assert png_size(tmp_path / "out" / "comparison.png") == expected_size()
    lines = (tmp_path / "out" / "comparison.md").read_text().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    }
    assert sorted(rows) == ["fast", "slow"]
    for directory in runs:
        summary = load_run(directory).summary
        row = rows[directory.name]
        assert row["best accuracy"] == f"{summary['best_accuracy']:.4f}"
        assert row["final accuracy"] == f"{summary['final_accuracy']:.4f}"
        assert row["MB total"] == f"{summary['total_bytes'] / 1e6:.1f}"
        assert row["rounds"] == str(summary["rounds_completed"])
        assert row["K"] == "100" and row["status"] == "completed"
    # 0.95 at round 1, 0.975 at round 2: 0.97 is reached at 1 + 0.02 / 0.025 = 1.8 rounds.
    assert rows["fast"]["rounds to target"] == "1.8"
    assert (rows["slow"]["best accuracy"], rows["fast"]["best accuracy"]) == ("0.9600", "0.9800")
    assert rows["slow"]["rounds to target"] == "-"  # never reached 0.97
    assert (rows["slow"]["eta"], rows["fast"]["eta"]) == ("0.05", "0.2")
    assert compare.labels_for([load_run(d) for d in runs]) == ["lr=0.05", "lr=0.2"]


def test_compare_refuses_a_directory_without_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "neither a run directory nor a directory of runs" in capsys.readouterr().err


def test_offline_reader_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not a wandb file at all")
    with pytest.raises(ValueError, match="not a W&B run file"):
        read_offline_run(path)


def test_decoding_mnist_from_the_hub_shows_a_progress_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import datasets
    import numpy as np

    from tasks.mnist.data import load_from_hub

    def image(label: int) -> Image.Image:
        return Image.fromarray(np.full((28, 28), 25 * label, dtype=np.uint8))

    splits = {
        split: {"image": [image(i % 10) for i in range(n)], "label": [i % 10 for i in range(n)]}
        for split, n in (("train", 30), ("test", 10))
    }
    monkeypatch.setattr(datasets, "load_dataset", lambda name: splits)
    arrays = load_from_hub()
    assert arrays.train_images.shape == (30, 28, 28) and arrays.test_labels.tolist()[:3] == [
        0,
        1,
        2,
    ]
    assert int(arrays.train_images[3, 0, 0]) == 75
    err = capsys.readouterr().err
    assert "MNIST train: decoding: 100%" in err and "30/30" in err and "10/10" in err


def test_the_zoom_keeps_every_compared_run_in_view() -> None:
    good = [0.1, 0.95, 0.97, 0.975, 0.98, 0.98]
    weak = [0.1, 0.80, 0.85, 0.86, 0.87, 0.87]
    poor = [0.1, 0.40, 0.50, 0.55, 0.60, 0.61]
    bottom, top = plots.zoom_limits([good, good, weak, poor], [0.97])  # pooled median 0.95
    for curve in (good, weak, poor):
        in_view = [a for a in curve if bottom <= a <= top]
        assert len(in_view) >= len(curve) / 2  # the better half of each run, at least
    assert top == pytest.approx(0.99)
    # Good runs alone keep the paper's zoom near the target.
    assert plots.zoom_limits([good], [0.97]) == pytest.approx((0.92, 0.99))
    assert plots.zoom_limits([[], []], [0.97]) is None


def test_the_done_line_prints_rounds_to_target_rounded(
    synthetic_mnist: Path, tmp_path: Path, flwr_warnings: pytest.LogCaptureFixture
) -> None:
    run_server(
        base_config(synthetic_mnist, tmp_path, **{"num-server-rounds": 2, "target-accuracy": 0.01}),
        nodes=2,
    )
    (done,) = [r.getMessage() for r in flwr_warnings.records if r.getMessage().startswith("done:")]
    reached = load_run(tmp_path / "t").summary["rounds_to_target"]
    assert f"rounds to 0.01: {reached:.1f}," in done
