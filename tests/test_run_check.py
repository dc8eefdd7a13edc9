"""Launchers check the run config before `flwr run` (issue 14, items 1, 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.run_check import check_run_config, run_config_options
from tests.conftest import REPO


def test_run_config_options_are_picked_out_of_flwr_run_options() -> None:
    args = ["--stream", "-c", "lr=0.1", "--run-config=seed=2", "--federation-config", "x=1"]
    assert run_config_options(args) == ["lr=0.1", "seed=2"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-c", "local-epoch=2"], "'local-epoch' is unknown (did you mean local-epochs?)"),
        (["-c", "lr=0.1 batch-sise=5"], "'batch-sise' is unknown (did you mean batch-size or"),
        (["-c", "wandb.projekt='x'"], "did you mean wandb.project"),
        (["-c", "fraction-train=1.5"], "'fraction-train' = 1.5 is invalid: expected C"),
        (["-c", "lr=abc"], "unreadable"),
    ],
)
def test_a_bad_run_config_is_named_in_one_line(args: list[str], expected: str) -> None:
    problem = check_run_config(args)
    assert problem is not None and expected in problem
    assert "\n" not in problem


def test_a_good_run_config_and_a_preset_file_pass(tmp_path: Path) -> None:
    assert check_run_config(["-c", "lr=0.05 num-server-rounds=20 wandb.mode='disabled'"]) is None
    preset = tmp_path / "p.toml"
    preset.write_text('task = "mnist-cnn"\nlocal-epochs = 5\n')
    assert check_run_config(["-c", str(preset)]) is None
    preset.write_text("local-epoch = 5\n")
    assert "did you mean local-epochs?" in (check_run_config(["-c", str(preset)]) or "")


@pytest.mark.parametrize("launcher", ["simulation", "local"])
def test_the_launchers_refuse_a_misspelt_key_before_starting_anything(
    launcher: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FLWR_HOME": str(tmp_path / "home"),
        "WORK_DIR": str(tmp_path / "work"),
    }
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / launcher / "run.sh"), "2", "-c", "local-epoch=2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "run config key 'local-epoch' is unknown (did you mean local-epochs?); plain `flwr run` "
        "refuses it with '[code: 15] Invalid run configuration.'"
    ]
    assert not (tmp_path / "home" / "config.toml").exists()  # no SuperLink was set up
