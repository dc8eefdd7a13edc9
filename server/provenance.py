"""Where a run came from: library versions and the git revision of the code."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import flwr
import torch

_CODE = Path(__file__).resolve().parents[1]


def git_revision(*directories: Path) -> str | None:
    """The commit of the first git work tree among ``directories`` (``+dirty`` if modified).

    Under ``flwr run`` the ServerApp runs from an installed FAB without a
    ``.git``, so the SuperLink's working directory is tried next; None when
    neither is a checkout or git is missing.
    """
    for directory in directories or (_CODE, Path.cwd()):
        try:
            head = subprocess.run(
                ["git", "-C", str(directory), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        return head + ("+dirty" if dirty else "")
    return None


def environment_info() -> dict[str, Any]:
    """Versions and revision, for ``config.json`` and the tracker's run config."""
    return {
        "flwr_version": flwr.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_revision": git_revision(),
    }
