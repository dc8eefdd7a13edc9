"""Where the Shakespeare roles come from: local Gutenberg plays, or the Hugging Face hub.

Resolution order, as for MNIST: run config ``data-dir``, then the
environment variable ``FEDAVG_DATA_DIR``, then the hub. A directory holds
the plays (``*.txt``, one play per file; ``metadata.txt`` is ignored)
directly or in a ``shakespeare-gutenberg/`` subdirectory. Poems (no roles)
are skipped with a warning naming the file; an unreadable file fails the load
naming its path.

The hub source is ``flwrlabs/shakespeare``: LEAF's preprocessing of the same
corpus, one row per 80-character window (``character_id``, ``x``, ``y``),
partitioned by role with flwr-datasets' ``NaturalIdPartitioner``. It holds
windows, not lines: each role's text is rebuilt from its consecutive windows
and wrapped into pseudo-lines of at most ``HUB_LINE_WIDTH`` characters, to
which the same 80/20 line split applies. Without a directory and without a
reachable hub, loading fails within seconds and says how to point at files.

The roles are built once per process and cached.
"""

from __future__ import annotations

import functools
import logging
import os
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tasks.mnist.data import DataUnavailableError, hub_reachable
from tasks.shakespeare.federation import Role, build_roles
from tasks.shakespeare.lines import SEQUENCE_LENGTH
from tasks.shakespeare.parser import read_plays

DATA_DIR_ENV = "FEDAVG_DATA_DIR"
SUBDIRECTORY = "shakespeare-gutenberg"
HUB_DATASET = "flwrlabs/shakespeare"
HUB_LINE_WIDTH = 60
IGNORED_FILES = frozenset({"metadata.txt"})


def play_files(directory: Path) -> list[Path]:
    """The play files under ``directory`` (or its ``shakespeare-gutenberg/``)."""
    folder = directory / SUBDIRECTORY if (directory / SUBDIRECTORY).is_dir() else directory
    files = sorted(
        p for p in folder.glob("*.txt") if p.name not in IGNORED_FILES and not p.is_dir()
    )
    if not files:
        raise DataUnavailableError(
            f"{directory}: no plays (*.txt) there or in {directory / SUBDIRECTORY}"
        )
    return files


def load_directory(directory: Path, *, report: int = logging.WARNING) -> list[Role]:
    """Parse every play under ``directory`` into roles (``report``: see ``read_plays``)."""
    plays = read_plays(play_files(directory), report=report)
    roles = build_roles([(play.name, play.roles) for play in plays])
    if not roles:
        raise DataUnavailableError(f"{directory}: no play has a role with 2 or more lines")
    return roles


def text_from_windows(character: str, xs: Sequence[str], ys: Sequence[str]) -> str:
    """Rebuild a role's text from its consecutive windows (LEAF's stride-1 cut)."""
    for i in range(len(xs) - 1):
        if xs[i][1:] + ys[i] != xs[i + 1]:
            raise DataUnavailableError(
                f"{HUB_DATASET}: windows {i} and {i + 1} of {character!r} are not consecutive"
            )
    return xs[0] + "".join(ys) if xs else ""


def roles_from_windows(
    partitions: Iterable[tuple[str, Sequence[str], Sequence[str]]],
) -> list[Role]:
    """Roles from (character_id, x column, y column) partitions, as from the hub."""
    speakers: dict[str, list[str]] = {}
    for character, xs, ys in partitions:
        text = text_from_windows(character, xs, ys)
        speakers[character] = textwrap.wrap(text, HUB_LINE_WIDTH)
    return build_roles([("hub", speakers)])


def natural_id_partitions(dataset: Any) -> Iterable[tuple[str, Sequence[str], Sequence[str]]]:
    """Split a (character_id, x, y) ``datasets.Dataset`` by role with NaturalIdPartitioner."""
    from flwr_datasets.partitioner import NaturalIdPartitioner

    partitioner = NaturalIdPartitioner(partition_by="character_id")
    partitioner.dataset = dataset
    for pid in range(partitioner.num_partitions):
        part = partitioner.load_partition(pid)
        xs, ys = part["x"], part["y"]
        if xs and len(xs[0]) != SEQUENCE_LENGTH:
            raise DataUnavailableError(f"{HUB_DATASET}: x is not {SEQUENCE_LENGTH} characters")
        yield partitioner.partition_id_to_natural_id[pid], xs, ys


def load_from_hub(dataset: str = HUB_DATASET) -> list[Role]:
    """Download LEAF's Shakespeare windows and rebuild the roles (needs internet)."""
    import datasets

    table = datasets.load_dataset(dataset, split="train")
    return roles_from_windows(natural_id_partitions(table))


@functools.lru_cache(maxsize=2)
def load_roles(data_dir: str = "", *, report: int = logging.WARNING) -> tuple[Role, ...]:
    """All roles with 2 or more lines, from ``data_dir``, ``$FEDAVG_DATA_DIR`` or the hub.

    ``report``: the level of the line naming skipped non-play files (``read_plays``).
    """
    directory = data_dir or os.environ.get(DATA_DIR_ENV, "")
    if directory:
        return tuple(load_directory(Path(directory).expanduser(), report=report))
    reason = hub_reachable()
    if reason is not None:
        raise DataUnavailableError(
            f"Shakespeare: no local directory configured and the Hugging Face hub cannot be "
            f"used ({reason}). Point at the Project Gutenberg plays (one *.txt per play, or a "
            f"directory holding {SUBDIRECTORY}/) with run config data-dir, e.g. "
            f"`flwr run . -c \"data-dir='/path/to/data'\"`, or the environment variable "
            f"{DATA_DIR_ENV} in the SuperLink's / SuperNode's environment."
        )
    return tuple(load_from_hub())
