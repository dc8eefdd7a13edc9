"""Warming the app in this process, so that each forked task finds it ready.

Once a task has loaded a FAB's ClientApp, this process imports that module
from the FAB's installed directory (``warm_app``), so later tasks find it
imported; a task of another FAB drops those modules and imports its own. The
ClientApp module may then load here what each task of a run would load again
(``prepare_for_tasks``, its ``warm_executor_prepare`` hook). The state lives in
this module alone: the executor reads and changes it through these functions.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from . import flwr_internals
from .preload import _app_modules

LOGGER = logging.getLogger("fedavg.warm_executor")

_WARM_APP_DIR: list[Path] = []  # the FAB directory whose ClientApp this process holds
_WARM_APP_MODULE: list[ModuleType] = []  # and that ClientApp's module
PREPARE_HOOK = "warm_executor_prepare"
_PREPARED: list[tuple[str, tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]] = []
_PREPARED_KEEP = 8  # (FAB, run config, node config) triples remembered


def warm_app(app_dir: Path) -> None:
    """Import the ClientApp module of the FAB in ``app_dir`` here, for later forks.

    Only after a task loaded it without error. A child checks, after the FAB
    install, that each app module it holds comes from its own FAB's directory
    and drops those that do not, so another FAB (or version) loads its own.
    """
    if _WARM_APP_DIR == [app_dir]:
        return
    try:
        reference = flwr_internals.clientapp_reference(app_dir)
        for name in _app_modules(app_dir):
            del sys.modules[name]
        for old in _WARM_APP_DIR:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(old))
        sys.path.insert(0, str(app_dir))
        _WARM_APP_DIR[:] = [app_dir]
        started = time.monotonic()
        _PREPARED.clear()  # a fresh import holds nothing its hook loaded before
        _WARM_APP_MODULE[:] = [importlib.import_module(reference.partition(":")[0])]
        LOGGER.info("imported %s from %s in %.2f s", reference, app_dir, time.monotonic() - started)
    except Exception as error:  # the tasks import it themselves, as without warming
        LOGGER.warning("could not import the ClientApp of %s here: %s", app_dir, error)
        _WARM_APP_MODULE.clear()
        for name in _app_modules(app_dir):
            del sys.modules[name]


def prepare_for_tasks(
    app_dir: Path, run_config: dict[str, Any], node_config: dict[str, Any]
) -> None:
    """Let the warm ClientApp load here what each later task of the run would load again.

    A ClientApp module may define ``warm_executor_prepare(run_config,
    node_config)``; ours loads the node's data (``clients.app``). It is called
    in this process once per (FAB, run config, node config), after a task with
    those has completed, so that later forks inherit what it loaded instead
    of each loading it. It must not start threads (this process forks), and
    what it caches must still be checked by the tasks against its source
    (ours keys its cache on the data file's inode, size and mtime). A hook
    that raises is logged and the tasks load for themselves, as without it.
    """
    if _WARM_APP_DIR != [app_dir] or not _WARM_APP_MODULE:
        return
    hook = getattr(_WARM_APP_MODULE[0], PREPARE_HOOK, None)
    if not callable(hook):
        return
    try:
        key = (str(app_dir), tuple(sorted(run_config.items())), tuple(sorted(node_config.items())))
    except TypeError:  # values that do not sort: not worth a guess
        return
    if key in _PREPARED:
        return
    _PREPARED[:] = [*_PREPARED[-(_PREPARED_KEEP - 1) :], key]
    started = time.monotonic()
    try:
        hook(dict(run_config), dict(node_config))
    except Exception as error:
        LOGGER.warning(
            "%s of %s failed (tasks load for themselves): %s", PREPARE_HOOK, app_dir, error
        )
        return
    LOGGER.info("%s of %s took %.2f s", PREPARE_HOOK, app_dir, time.monotonic() - started)
