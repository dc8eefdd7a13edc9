"""The results contract: ``<results-dir>/<run-name>/{config,metrics,summary}`` files.

- ``config.json``: the parsed experiment config, K and the environment,
  written before round 1.
- ``metrics.jsonl``: one JSON object per round, appended (and flushed) as the
  round ends, so a crashed run keeps every finished round. Rounds skipped by
  ``eval-every`` have ``test_accuracy`` and ``test_loss`` null.
- ``summary.json``: final and best accuracy, rounds-to-target the paper's way,
  bytes and wall time; written when the run ends, also when it fails
  (``status`` says which), and replaced atomically. A run that fails before
  round 1 (a bad config, missing data) still gets its directory, with
  ``config.json`` and ``summary.json`` (``write_failed_start``).

Every file is strict JSON: a NaN or Inf (a diverged loss, say) is written as null.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol.config import ExperimentConfig
from server.round_record import RoundRecord
from strategies.target import rounds_to_target
from tasks.registry import target_accuracy

METRIC_FIELDS = (
    "round",
    "test_accuracy",
    "test_loss",
    "train_loss",
    "clients_available",
    "clients_sampled",
    "clients_replied",
    "clients_rejected",
    "bytes_down",
    "bytes_up",
    "seconds",
    "clients_seconds",
    "aggregate_seconds",
    "evaluate_seconds",
    "lr",
    "eval_accuracy",
    "eval_loss",
    "model_updated",
)


def config_values(config: ExperimentConfig) -> dict[str, Any]:
    """The config as written to ``config.json`` and trackers: its values, the derived seeds
    and the target accuracy in force (``target``)."""
    return {**config.to_dict(), "target": target_accuracy(config)}


def finite(value: Any) -> Any:
    """``value`` with every NaN or Inf float, however deeply nested, replaced by None.

    JSON has no NaN: Python's ``json`` would write a bare ``NaN`` that strict
    readers (``jq``, browsers, ``json.loads(..., parse_constant=...)``) refuse.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(payload: Any, **kwargs: Any) -> str:
    """Strict JSON: non-finite numbers become null, never a bare ``NaN``."""
    return json.dumps(finite(payload), allow_nan=False, **kwargs)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def default_run_name(config: ExperimentConfig, run_id: int) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{config.describe()}_seed{config.seed}_{stamp}_{run_id}"


def write_failed_start(
    run_config: Mapping[str, object],
    *,
    run_id: int,
    error: BaseException,
    config: ExperimentConfig | None = None,
) -> Path:
    """The results directory of a run that failed before round 1 (a bad config, no data).

    ``config.json`` holds the run config as given (and the parsed one when it
    parsed), ``summary.json`` says ``failed`` with the error in one line. The
    directory is ``results-dir``/``run-name`` as the run config says where it
    can; otherwise ``results``/``failed_<time>_<run id>``.
    """
    results_dir, run_name = run_config.get("results-dir"), run_config.get("run-name")
    if config is not None:
        results_dir, run_name = config.results_dir, config.run_name
    if not isinstance(results_dir, str) or not results_dir:
        results_dir = ExperimentConfig.results_dir
    if not isinstance(run_name, str) or not run_name or "/" in run_name:
        run_name = (
            default_run_name(config, run_id)
            if config is not None
            else f"failed_{datetime.now(UTC):%Y%m%d-%H%M%S}_{run_id}"
        )
    directory = _new_directory(Path(results_dir).expanduser().resolve(), run_name)
    saved: dict[str, Any] = {"run_config": dict(run_config), "run_id": run_id}
    if config is not None:
        saved["config"] = config_values(config)
    write_json_atomic(directory / "config.json", saved)
    (directory / "metrics.jsonl").touch()
    summary = {
        "status": "failed",
        "error": one_line_error(error),
        "failed_before_round": 1,
        "rounds_completed": 0,
        "final_accuracy": None,
        "best_accuracy": None,
        "target_accuracy": target_accuracy(config) if config is not None else None,
        "rounds_to_target": None,
        "stopped_early": False,
        "total_bytes": 0,
        "bytes_down": 0,
        "bytes_up": 0,
        "updates_rejected": 0,
        "wall_seconds": 0.0,
    }
    write_json_atomic(directory / "summary.json", summary)
    return directory


def one_line_error(error: BaseException) -> str:
    """``Type: message`` on one line (a multi-line message keeps its first line)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _new_directory(base: Path, name: str) -> Path:
    """Make ``base/name``, or ``base/name-2``... when taken: never reuse a run's directory."""
    directory = base / name
    suffix = 1
    while directory.exists():
        suffix += 1
        directory = base / f"{name}-{suffix}"
    directory.mkdir(parents=True)
    return directory


class ResultsWriter:
    """Writes one run's results directory as the rounds go."""

    def __init__(self, directory: Path, config: ExperimentConfig) -> None:
        self.directory = directory
        self.config = config
        self.metrics_path = directory / "metrics.jsonl"
        self.rows: list[dict[str, Any]] = []
        self._started = time.monotonic()

    @classmethod
    def create(
        cls, config: ExperimentConfig, *, run_id: int, num_clients: int, extra: dict[str, Any]
    ) -> ResultsWriter:
        """Make a fresh run directory (never reusing one) and write ``config.json``."""
        name = config.run_name or default_run_name(config, run_id)
        directory = _new_directory(Path(config.results_dir).expanduser().resolve(), name)
        writer = cls(directory, config)
        write_json_atomic(
            directory / "config.json",
            {
                "config": config_values(config),
                "num_clients": num_clients,
                "run_id": run_id,
                **extra,
            },
        )
        writer.metrics_path.touch()
        return writer

    @classmethod
    def resume(
        cls, directory: Path, config: ExperimentConfig, *, after_round: int
    ) -> ResultsWriter:
        """Continue ``directory``: keep its rows up to ``after_round``, drop later ones.

        Rows after the checkpoint belong to rounds that the resumed run will
        redo; ``metrics.jsonl`` is rewritten atomically without them.
        """
        writer = cls(directory, config)
        writer.rows = [r for r in read_metrics(directory) if r["round"] <= after_round]
        tmp = writer.metrics_path.with_name(writer.metrics_path.name + ".tmp")
        tmp.write_text("".join(dumps(r) + "\n" for r in writer.rows))
        os.replace(tmp, writer.metrics_path)
        config_path = directory / "config.json"
        saved = json.loads(config_path.read_text())
        saved.setdefault("resumed", []).append(
            {
                "after_round": after_round,
                "at": datetime.now(UTC).isoformat(),
                "config": config_values(config),
            }
        )
        write_json_atomic(config_path, saved)
        return writer

    def append_round(self, record: RoundRecord) -> dict[str, Any]:
        """Append one round's row to ``metrics.jsonl`` and return it."""
        values = dataclasses.asdict(record)
        row = {key: values[key] for key in METRIC_FIELDS}
        row["rejections"] = values["rejections"]
        row["elapsed_seconds"] = round(time.monotonic() - self._started, 3)
        row = finite(row)
        self.rows.append(row)
        with self.metrics_path.open("a") as stream:
            stream.write(dumps(row) + "\n")
            stream.flush()
        return row

    def summary(
        self, *, status: str, error: str | None = None, stopped_early: bool = False
    ) -> dict[str, Any]:
        evaluated = [r for r in self.rows if r["test_accuracy"] is not None]
        accuracies = [r["test_accuracy"] for r in evaluated]
        target = target_accuracy(self.config)
        return {
            "status": status,
            "error": error,
            "rounds_completed": max((r["round"] for r in self.rows), default=0),
            "final_accuracy": accuracies[-1] if accuracies else None,
            "best_accuracy": max(accuracies) if accuracies else None,
            "target_accuracy": target,
            "rounds_to_target": rounds_to_target(
                [r["round"] for r in evaluated], accuracies, target
            )
            if evaluated
            else None,
            "stopped_early": stopped_early,
            "total_bytes": sum(r["bytes_down"] + r["bytes_up"] for r in self.rows),
            "bytes_down": sum(r["bytes_down"] for r in self.rows),
            "bytes_up": sum(r["bytes_up"] for r in self.rows),
            "updates_rejected": sum(r["clients_rejected"] for r in self.rows),
            "wall_seconds": round(time.monotonic() - self._started, 3),
        }

    def finish(
        self, *, status: str, error: str | None = None, stopped_early: bool = False
    ) -> dict[str, Any]:
        """Write ``summary.json`` and return it."""
        summary = self.summary(status=status, error=error, stopped_early=stopped_early)
        write_json_atomic(self.directory / "summary.json", summary)
        return summary


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    """Read a run's ``metrics.jsonl``, skipping a torn last line of a crashed run."""
    rows = []
    for line in (directory / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


@dataclasses.dataclass(frozen=True)
class RunResults:
    """One run directory read back: ``config.json``, ``metrics.jsonl``, ``summary.json``."""

    directory: Path
    config: dict[str, Any]  # config.json as written (the experiment under "config")
    rows: list[dict[str, Any]]
    summary: dict[str, Any]  # empty when the run has not ended (no summary.json yet)

    @property
    def experiment(self) -> dict[str, Any]:
        return dict(self.config.get("config", {}))


def load_run(directory: Path) -> RunResults:
    """Read a run directory; a missing ``config.json`` is an error, a missing summary is not."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: not a run directory (no config.json)")
    summary_path = directory / "summary.json"
    return RunResults(
        directory=directory,
        config=json.loads(config_path.read_text()),
        rows=read_metrics(directory) if (directory / "metrics.jsonl").is_file() else [],
        summary=json.loads(summary_path.read_text()) if summary_path.is_file() else {},
    )
