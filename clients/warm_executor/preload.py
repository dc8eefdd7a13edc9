"""What this process imports once for all its tasks, and the app modules it must not hold.

``--preload`` imports the app at start-up to pull in its heavy dependencies
(torch, numpy, flwr), then drops the app's own modules: a module imported
here would shadow the FAB's copy (Flower's loader takes ``sys.modules`` as it
finds it). The executor's own modules are dropped too (they are not in the
interpreter's directories either): what runs keeps the functions and state it
holds, which is why the package imports its own modules at import time only,
never inside a function (a later import would load a second copy, with state
of its own).
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

# torch.optim imports torch._dynamo the first time an optimizer is built (about 850
# modules, 1.3-2 s of CPU here): a task forked before that would pay it every time.
DEFAULT_PRELOAD = "torch,torch._dynamo,numpy,clients.app"


def _app_modules(app_dir: Path) -> list[str]:
    """Modules in ``sys.modules`` that belong to the app in ``app_dir`` but were not loaded from it.

    A module of the app imported before the task (by ``--preload``, or the
    executor's own package) would shadow the FAB's copy.
    """
    top_level = {p.stem if p.suffix == ".py" else p.name for p in app_dir.iterdir()}
    root = str(app_dir.resolve())
    stale = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in top_level:
            continue
        file = getattr(module, "__file__", None) or ""
        if not file or not str(Path(file).resolve()).startswith(root):
            stale.append(name)
    return stale


def _interpreter_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(str(Path(p).resolve()) for p in paths)


def preload(modules: Iterable[str]) -> tuple[list[str], list[str]]:
    """Import ``modules`` (and what they import), then drop the app's own modules.

    Third-party modules stay imported, so every task starts with them. Modules
    from outside the interpreter's own directories (the app, wherever it was
    imported from) are dropped: each task imports the FAB's copy. Returns
    (imported, not found).
    """
    imported, missing = [], []
    for name in modules:
        try:
            importlib.import_module(name)
            imported.append(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
    own = _interpreter_paths()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or not file:
            continue
        if not str(Path(file).resolve()).startswith(own):
            del sys.modules[name]
    return imported, missing
