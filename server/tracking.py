"""Experiment tracking as an add-on to the strategy's per-round hook.

The strategy knows nothing of trackers: the ServerApp subscribes the results
writer, the progress line and a ``Tracker`` to ``on_round_end`` (``fan_out``),
and tells the tracker once more when the run ends, completed or failed.

``WandbTracker`` makes one W&B run per Flower run, in the ServerApp only
(clients never need credentials):

- config: the parsed experiment config (with derived seeds and target), K,
  the Flower run id, flwr/torch/python versions and the git revision;
- per round, with ``step`` = the round: the ``metrics.jsonl`` row under
  namespaced keys (``ROUND_KEYS``), rounds without central evaluation simply
  lack ``test/*``; plus ``comm/bytes_total``, the bytes so far;
- summary: ``summary.json`` (best and final accuracy, rounds-to-target, total
  bytes, status, ...);
- the final global model as a ``model`` artifact (``wandb/final_model.pt``
  in the run directory, a torch state dict).

The W&B run directory is ``<run dir>/wandb/``, so an offline run travels with
the run's results; ``wandb sync <run dir>/wandb/offline-run-*`` uploads it
later. Any W&B failure (import, init, log, finish: no network, a bad key, a
full disk) is logged as a warning and tracking stops or goes on without the
failed part; the training run and its local results are never affected.
An online run that cannot start falls back to offline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from logging import INFO, WARNING
from pathlib import Path
from typing import Any, Protocol

from flwr.app import ArrayRecord
from flwr.common.logger import log

from protocol.config import ExperimentConfig
from server.results import config_values
from server.round_record import RoundRecord
from server.wandb_config import WandbConfig

RoundHook = Callable[[RoundRecord], object]  # return values are ignored

# metrics.jsonl field -> W&B history key.
ROUND_KEYS = {
    "test_accuracy": "test/accuracy",
    "test_loss": "test/loss",
    "train_loss": "train/loss",
    "lr": "train/lr",
    "examples": "train/examples",
    "eval_accuracy": "eval/accuracy",
    "eval_loss": "eval/loss",
    "clients_available": "clients/available",
    "clients_sampled": "clients/sampled",
    "clients_replied": "clients/replied",
    "clients_rejected": "clients/rejected",
    "bytes_down": "comm/bytes_down",
    "bytes_up": "comm/bytes_up",
    "seconds": "time/round_seconds",
    "clients_seconds": "time/clients_seconds",
    "aggregate_seconds": "time/aggregate_seconds",
    "evaluate_seconds": "time/evaluate_seconds",
}
MODEL_FILE = "final_model.pt"


def fan_out(*hooks: RoundHook) -> Callable[[RoundRecord], None]:
    """One ``on_round_end`` that calls each hook in order (a raising hook stops the run)."""

    def on_round_end(record: RoundRecord) -> None:
        for hook in hooks:
            hook(record)

    return on_round_end


def round_metrics(record: RoundRecord) -> dict[str, float | int]:
    """The round's values under their W&B keys, without the ones the round lacks."""
    values: dict[str, float | int] = {}
    for field, key in ROUND_KEYS.items():
        value = getattr(record, field)
        if value is not None:
            values[key] = value
    values["comm/bytes"] = record.bytes_down + record.bytes_up
    return values


class Tracker(Protocol):
    """Told about every round and once about the end of the run; must never raise."""

    def log_round(self, record: RoundRecord) -> None: ...

    def finish(self, summary: Mapping[str, Any], *, final_arrays: ArrayRecord | None) -> None: ...


class NoTracker:
    """Tracking disabled."""

    def log_round(self, record: RoundRecord) -> None:
        pass

    def finish(self, summary: Mapping[str, Any], *, final_arrays: ArrayRecord | None) -> None:
        pass


def start_tracker(
    settings: WandbConfig,
    *,
    config: ExperimentConfig,
    directory: Path,
    run_info: Mapping[str, Any],
) -> Tracker:
    """A W&B tracker for the run in ``directory``, or ``NoTracker`` if disabled or failing."""
    mode = settings.resolved_mode()
    if mode == "disabled":
        log(INFO, "W&B: disabled")
        return NoTracker()
    try:
        import wandb
    except Exception as error:  # a broken install must not stop training
        _warn("import wandb", error)
        return NoTracker()
    run_config = {**config_values(config), **run_info}
    for attempt in (mode, "offline") if mode == "online" else (mode,):
        try:
            run = wandb.init(
                project=settings.project,
                entity=settings.entity or None,
                group=settings.run_group(config),
                job_type=settings.run_job_type(config),
                tags=settings.run_tags(config),
                name=settings.name or directory.name,
                config=run_config,
                dir=str(directory),
                mode=attempt,  # type: ignore[arg-type]
                reinit="create_new",
                settings=wandb.Settings(init_timeout=settings.init_timeout, console="off"),
            )
        except Exception as error:
            _warn(f"init ({attempt})", error)
            continue
        log(INFO, "W&B: %s run %s in %s", attempt, run.id, directory / "wandb")
        return WandbTracker(run, settings=settings, directory=directory, offline=run.offline)
    return NoTracker()


class WandbTracker:
    """Logs one Flower run to one W&B run; each failure is a warning, never an exception."""

    def __init__(self, run: Any, *, settings: WandbConfig, directory: Path, offline: bool) -> None:
        self.run = run
        self.settings = settings
        self.directory = directory
        self.offline = offline
        self.failures: dict[str, int] = {}
        self._bytes_total = 0

    def log_round(self, record: RoundRecord) -> None:
        self._bytes_total += record.bytes_down + record.bytes_up
        values = {**round_metrics(record), "comm/bytes_total": self._bytes_total}
        self._safely("log", lambda: self.run.log(values, step=record.round))

    def finish(self, summary: Mapping[str, Any], *, final_arrays: ArrayRecord | None) -> None:
        self._safely("summary", lambda: self.run.summary.update(dict(summary)))
        if final_arrays is not None and self.settings.log_model:
            self._safely("model artifact", lambda: self._log_model(final_arrays, summary))
        completed = summary.get("status") == "completed"
        self._safely("finish", lambda: self.run.finish(exit_code=0 if completed else 1))
        # finish() can return before the W&B service has written the run's last records
        # (seen with offline runs here); teardown waits for it. The ServerApp process
        # has no other W&B run.
        self._safely("teardown", _teardown)
        if self.offline:
            sync_dir = self._safely("sync dir", lambda: self.run.settings.sync_dir)
            log(INFO, "W&B: offline run saved; upload it with: wandb sync %s", sync_dir)
        else:
            log(INFO, "W&B: %s", self._safely("url", lambda: self.run.url))

    def _log_model(self, arrays: ArrayRecord, summary: Mapping[str, Any]) -> None:
        import torch
        import wandb

        path = self.directory / "wandb" / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(arrays.to_torch_state_dict(), path)
        artifact = wandb.Artifact(
            f"model-{self.run.id}",
            type="model",
            metadata={
                key: summary.get(key)
                for key in ("rounds_completed", "final_accuracy", "best_accuracy")
            },
        )
        # "immutable": referenced where it is (in the run directory), not copied to a cache.
        artifact.add_file(str(path), name=MODEL_FILE, policy="immutable")
        self.run.log_artifact(artifact, aliases=["final"])

    def _safely(self, stage: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception as error:
            self.failures[stage] = self.failures.get(stage, 0) + 1
            if self.failures[stage] == 1:  # once per stage: a full disk must not flood the log
                _warn(stage, error)
            return None


def _teardown() -> None:
    import wandb

    wandb.teardown()


def _warn(stage: str, error: BaseException) -> None:
    log(
        WARNING,
        "W&B %s failed (%s: %s); the run and its local results go on without it",
        stage,
        type(error).__name__,
        error,
    )
