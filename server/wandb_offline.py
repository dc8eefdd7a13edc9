"""Read back what an offline W&B run recorded, from its ``run-<id>.wandb`` file.

wandb 0.31 has no reader for offline runs (``wandb.Api`` only sees the
server; the old ``wandb.sdk.internal.datastore`` is gone), so this is a small
one. The file is a 7-byte header (``:W&B``, magic 0xBEE1, version) followed by
a LevelDB-style log: 32 KiB blocks of chunks, each chunk a 7-byte head
(crc32 ``<I``, length ``<H``, type ``B``: FULL=1, FIRST=2, MIDDLE=3, LAST=4)
and its bytes; a block tail shorter than a head is padding. The chunks join
into records, each one a serialised ``wandb_internal_pb2.Record``.

The checksum is not verified: the reader is for tests and comparisons of runs
this project wrote, not for recovering damaged files. JSON values come back as
JSON decodes them (``1.0`` is logged as ``1``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """The parts of an offline run that the tracker writes."""

    run_id: str = ""
    project: str = ""
    display_name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per log call
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # name, type, files
    exit_code: int | None = None


def iter_records(path: Path) -> Iterator[bytes]:
    """Yield the raw records of a ``.wandb`` file."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise ValueError(f"{path}: too short for a W&B header")
    ident, magic, _version = _HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path}: not a W&B run file (header {data[:7]!r})")
    position, pending = _HEADER.size, b""
    while position + _CHUNK.size <= len(data):
        room = _BLOCK - position % _BLOCK
        if room < _CHUNK.size:  # padding at the end of a block
            position += room
            continue
        _crc, length, kind = _CHUNK.unpack_from(data, position)
        start = position + _CHUNK.size
        payload = data[start : start + length]
        position = start + length
        if kind == _FULL:
            yield payload
        elif kind == _FIRST:
            pending = payload
        elif kind == _MIDDLE:
            pending += payload
        elif kind == _LAST:
            yield pending + payload
            pending = b""
        elif kind == 0 and length == 0:  # zero fill of a preallocated tail
            break
        else:
            raise ValueError(f"{path}: bad chunk type {kind} at byte {position - length}")


def _items(updates: Any) -> dict[str, Any]:
    """``key``/``nested_key`` + ``value_json`` items to a dict (nested keys joined by '/')."""
    values = {}
    for item in updates:
        key = item.key or "/".join(item.nested_key)
        values[key] = json.loads(item.value_json)
    return values


def read_offline_run(path: Path) -> OfflineRun:
    """Parse one ``.wandb`` file, or the single one inside an offline run directory."""
    from wandb.proto import wandb_internal_pb2 as pb  # only readers need wandb

    if path.is_dir():
        files = sorted(path.glob("*.wandb"))
        if len(files) != 1:
            raise ValueError(f"{path}: expected one .wandb file, found {len(files)}")
        path = files[0]
    run = OfflineRun()
    for raw in iter_records(path):
        record = pb.Record()  # type: ignore[attr-defined]
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.project = record.run.run_id, record.run.project
            run.display_name, run.group = record.run.display_name, record.run.run_group
            run.job_type, run.tags = record.run.job_type, list(record.run.tags)
            run.config.update(_config_values(record.run.config.update))
        elif kind == "config":
            run.config.update(_config_values(record.config.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
            for item in record.summary.remove:
                run.summary.pop(item.key, None)
        elif kind == "artifact":
            run.artifacts.append(
                {
                    "name": record.artifact.name,
                    "type": record.artifact.type,
                    "metadata": json.loads(record.artifact.metadata or "{}"),
                    "files": {
                        entry.path: entry.local_path for entry in record.artifact.manifest.contents
                    },
                }
            )
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _config_values(updates: Any) -> dict[str, Any]:
    # wandb stores each config entry as {"value": ..., "desc": ...}; internal
    # entries (``_wandb``) are not ours.
    values = _items(updates)
    return {
        key: value.get("value") if isinstance(value, dict) and "value" in value else value
        for key, value in values.items()
        if key != "_wandb"
    }
