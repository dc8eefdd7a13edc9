"""Checkpoints of the global model, written atomically, and resuming from them.

A checkpoint holds w_t, the round t and the experiment config it belongs to.
No random generator state needs saving: client sampling draws from
(sampling seed, round) and each client's batch order from (seed, round,
partition), so a run resumed after round t samples and trains exactly as the
uninterrupted run does in rounds t+1, t+2, ...

The file is written to a temporary name and renamed, so a crash while
writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocol.config import ConfigError, ExperimentConfig
from strategies.records import NamedArrays

CHECKPOINT_FILE = "checkpoint.npz"
_META_KEY = "__checkpoint_meta__"
# Keys that may change between the interrupted and the resumed run: the rest
# define the experiment and must match.
RESUMABLE_CHANGES = frozenset(
    {
        "num_server_rounds",
        "resume_from",
        "run_name",
        "results_dir",
        "data_dir",
        "node_wait_seconds",
        "round_timeout",
        "checkpoint_every",
        "client_threads",
        "stop_at_target",
        "eval_batch_size",
    }
)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or from another experiment."""


@dataclass(frozen=True)
class Checkpoint:
    """The global model after ``round`` and the config of the run that wrote it."""

    round: int
    arrays: NamedArrays
    config: dict[str, Any]
    path: Path


def save_checkpoint(
    directory: Path, *, server_round: int, arrays: NamedArrays, config: ExperimentConfig
) -> Path:
    """Write ``directory/checkpoint.npz`` atomically and return its path."""
    meta = json.dumps({"round": server_round, "config": dataclasses.asdict(config)})
    buffer = io.BytesIO()
    payload: dict[str, Any] = {**arrays, _META_KEY: np.frombuffer(meta.encode(), dtype=np.uint8)}
    np.savez(buffer, **payload)
    path = directory / CHECKPOINT_FILE
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as stream:
        stream.write(buffer.getvalue())
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(location: str | Path) -> Checkpoint:
    """Read a checkpoint from a run directory or a checkpoint file."""
    path = Path(location).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data[_META_KEY]).decode())
            arrays = {name: data[name] for name in data.files if name != _META_KEY}
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error
    return Checkpoint(round=int(meta["round"]), arrays=arrays, config=meta["config"], path=path)


def check_compatible(checkpoint: Checkpoint, config: ExperimentConfig) -> None:
    """Fail, naming the key, when the resumed run is not the same experiment."""
    current = dataclasses.asdict(config)
    for key, value in checkpoint.config.items():
        if key in RESUMABLE_CHANGES or current.get(key) == value:
            continue
        raise ConfigError(
            key.replace("_", "-"),
            current.get(key),
            f"{value!r}, as in the checkpoint {checkpoint.path} (resume the same experiment)",
        )
    if config.num_server_rounds <= checkpoint.round:
        raise ConfigError(
            "num-server-rounds",
            config.num_server_rounds,
            f"more than the checkpoint's round {checkpoint.round}",
        )
