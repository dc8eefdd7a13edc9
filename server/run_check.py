"""Check a run's config before ``flwr run`` sends it: one clear line per problem.

``flwr run`` refuses an override key that the app does not declare with
Flower's ``[code: 15] Invalid run configuration.`` and nothing else (the
SuperLink answers HTTP 412), and a bad value only fails inside the ServerApp,
after the run has started. Our launchers (``deploy/simulation/run.sh``,
``deploy/local/run.sh`` and the benchmarks that use them) call this first::

    python -m server.run_check [--app DIR] [flwr run options...]

It reads the ``-c``/``--run-config`` options among the others (as ``flwr
run`` does: ``key=value`` pairs or one TOML file), merges them over
``pyproject.toml``'s ``[tool.flwr.app.config]`` and parses the result as the
ServerApp would. On a problem it prints one line, naming an unknown key with
the closest valid ones ("did you mean local-epochs?"), and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flwr.common.config import flatten_dict, get_project_config, parse_config_args

from protocol.config import ConfigError, did_you_mean
from server.wandb_config import parse_wandb_config
from tasks.registry import parse_run_config

REPO = Path(__file__).resolve().parent.parent
EXIT_BAD_CONFIG = 2


def run_config_options(args: Sequence[str]) -> list[str]:
    """The values of ``-c``/``--run-config`` among ``flwr run``'s options."""
    values, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg in ("-c", "--run-config") and i + 1 < len(args):
            values.append(args[i + 1])
            i += 2
            continue
        for prefix in ("--run-config=", "-c="):
            if arg.startswith(prefix):
                values.append(arg[len(prefix) :])
        i += 1
    return values


def app_defaults(app_dir: Path) -> dict[str, Any]:
    """``[tool.flwr.app.config]`` flattened as Flower does (``wandb.mode`` and so on)."""
    config = get_project_config(app_dir)["tool"]["flwr"]["app"].get("config", {})
    return dict(flatten_dict(config))


def check_run_config(args: Sequence[str], app_dir: Path = REPO) -> str | None:
    """Return the problem with the run config that ``args`` would send, or None."""
    defaults = app_defaults(app_dir)
    options = run_config_options(args)
    try:
        overrides = parse_config_args(options) if options else {}
    except Exception as error:  # a malformed -c string or an unreadable TOML file
        message = getattr(error, "message", None) or str(error)
        return f"run config {options!r} is unreadable: {message}"
    for key in overrides:
        if key not in defaults:
            return (
                f"run config key {key!r} is unknown ({did_you_mean(key, defaults)}); "
                "plain `flwr run` refuses it with '[code: 15] Invalid run configuration.'"
            )
    fused = {**defaults, **overrides}
    try:
        parse_run_config(fused)
        parse_wandb_config(fused)
    except ConfigError as error:
        return str(error)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check the run config of a `flwr run` command line before running it.",
        epilog="Any other options are those of `flwr run`; only -c/--run-config are read.",
    )
    parser.add_argument("--app", type=Path, default=REPO, help="the Flower app's directory")
    known, rest = parser.parse_known_args(argv)
    problem = check_run_config(rest, known.app)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_BAD_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
