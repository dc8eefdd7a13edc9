"""server/transport/object_retry.py: the deployment grid asks for reply arrays again after 20 ms."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from server.transport import object_retry


def test_the_grid_retries_unavailable_reply_objects_after_20_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = importlib.import_module(object_retry.GRID_MODULE)
    calls: list[dict[str, Any]] = []

    def pull_objects(
        object_ids: list[str],
        pull_object_fn: Any,
        *,
        initial_backoff: float = 1,
        backoff_cap: float = 10,
    ) -> dict[str, bytes]:
        calls.append({"initial_backoff": initial_backoff, "backoff_cap": backoff_cap})
        return {}

    monkeypatch.setattr(grid, "pull_objects", pull_objects)
    object_retry.retry_unavailable_objects_sooner()
    object_retry.retry_unavailable_objects_sooner()  # twice (a second run): not stacked
    grid.pull_objects(object_ids=["a"], pull_object_fn=None)  # as HttpGrid.pull_messages calls it
    assert calls == [{"initial_backoff": 0.02, "backoff_cap": 0.2}]
    assert grid.pull_objects.func is pull_objects


def test_the_real_flwr_has_the_hook_and_a_moved_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = importlib.import_module(object_retry.GRID_MODULE)
    monkeypatch.setattr(grid, "pull_objects", grid.pull_objects)  # restored after the test
    object_retry.retry_unavailable_objects_sooner()  # flwr 1.42 as pinned: no error

    def moved(object_ids: list[str], pull_object_fn: Any) -> None: ...

    monkeypatch.setattr(grid, "pull_objects", moved)
    with pytest.raises(
        object_retry.PullHookMoved, match=r"http_grid\.pull_objects.*initial_backoff"
    ):
        object_retry.retry_unavailable_objects_sooner()
