"""scripts/setup.sh: what it installs, by its variables (DRY_RUN: nothing is installed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO


def dry_run(tmp_path: Path, **env: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.sh")],
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("TORCH_INDEX", "INSTALL_DOCKER_COMPOSE", "INSTALL_PODMAN")
            },
            "DRY_RUN": "1",
            "VENV": str(tmp_path / "venv"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert not (tmp_path / "venv").exists()
    return [line for line in done.stdout.splitlines() if line.startswith("+ ")]


def test_the_default_takes_torch_from_pips_index_and_nothing_from_apt(tmp_path: Path) -> None:
    commands = dry_run(tmp_path)
    assert "+ python -m pip install -q torch==2.14.1 torchvision==0.29.1" in commands
    assert not any("apt-get" in c or "index-url" in c for c in commands)


def test_torch_index_picks_the_index_of_torch_only(tmp_path: Path) -> None:
    cpu = "https://download.pytorch.org/whl/cpu"
    commands = dry_run(tmp_path, TORCH_INDEX=cpu)
    torch = [c for c in commands if "torch==" in c]
    assert torch == [
        f"+ python -m pip install -q --index-url {cpu} torch==2.14.1 torchvision==0.29.1"
    ]
    assert [c for c in commands if "index-url" in c] == torch  # the app's own deps: default index
