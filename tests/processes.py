"""Run an end-to-end script with a time limit that lets it clean up after itself.

``subprocess.run(..., timeout=...)`` kills the child with SIGKILL when the limit
passes, so its ``trap``/``finally`` never runs and whatever it started in a
session of its own (a SuperLink, a SuperExec, a Ray cluster) keeps running and
keeps its port: the next test run on that port then fails or, worse, talks to
the orphan. Here the script is asked to stop first (SIGTERM to its process
group), given a grace period to stop what it started, and only then killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

GRACE_SECONDS = 90.0


def run_stoppable(
    command: Sequence[str], *, timeout: float, grace: float = GRACE_SECONDS, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(command, capture_output=True, text=True, timeout=timeout)``.

    On timeout: SIGTERM to the command's process group, up to ``grace`` seconds for it
    to exit, then SIGKILL to the group; raises ``subprocess.TimeoutExpired`` carrying
    the output so far either way.
    """
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, so one signal reaches the script's children
        **popen,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        raise subprocess.TimeoutExpired(
            process.args, timeout, output=stdout, stderr=stderr
        ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
