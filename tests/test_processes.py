"""tests/processes.py: a script that runs past its time limit still gets to clean up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import run_stoppable


def test_a_finished_command_returns_its_output_and_status() -> None:
    done = run_stoppable([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], timeout=30)
    assert (done.returncode, done.stdout) == (3, "hi\n")


def test_a_timed_out_script_runs_its_trap_before_it_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    script = f"trap 'echo stopped-server > {marker}; exit 143' TERM; echo started; sleep 60 & wait"
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        run_stoppable(["bash", "-c", script], timeout=1, grace=30)
    assert marker.read_text() == "stopped-server\n"  # subprocess.run's SIGKILL skips the trap
    assert raised.value.output == "started\n"


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 60"
    with pytest.raises(subprocess.TimeoutExpired):
        run_stoppable(["bash", "-c", script], timeout=0.5, grace=1)
