"""The experiment's configuration: parsed once, at the edge, into a frozen object.

``run_config`` (pyproject's ``[tool.flwr.app.config]`` plus ``flwr run -c``
overrides) says which experiment to run. Every key is checked here, before any
round starts; a bad value raises ``ConfigError`` naming the key, the value and
what is allowed.

``ExperimentConfig`` is the one source of the schema: each field declares its
default, its check and the words for what is allowed (``key(...)``);
``SCHEMA`` (run-config key -> ``Key``) is derived from it, and a test checks
pyproject's ``[tool.flwr.app.config]`` and README's key table against it.

The paper's symbols: C = ``fraction-train``, E = ``local-epochs``,
B = ``batch-size`` (0 stands for B = inf: the whole local data set is one
batch), eta = ``lr``. K is not configured: it is the number of connected
SuperNodes (``num-supernodes`` in simulation).

This module imports nothing of the project (the tasks import it): the task
names a ``task`` may take are the caller's to give (``tasks=``), and the
paper's target for ``target-accuracy = 0`` is the task registry's. The
project's ServerApp, ClientApp and scripts parse through
``tasks.registry.parse_run_config``, which gives the registered names, and read
the target in force with ``tasks.registry.target_accuracy``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

KNOWN_PARTITIONS = ("iid", "noniid")
# MNIST inputs: standardised with the training set's mean and standard deviation, or the
# pixels scaled to [0, 1]; the paper does not say which it used.
INPUT_SCALINGS = ("standardised", "unit")
# w_0's draw (tasks.init): PyTorch's default, or Glorot-uniform with zero biases (TF's, 2016).
INIT_SCHEMES = ("pytorch", "glorot")
# fedavg is the paper's (strategies.fedavg); the others are Flower's (server.strategy_factory).
STRATEGIES = ("fedavg", "flower-fedavg", "fedprox", "fedavgm", "fedadam")
DERIVE = -1  # a seed of -1 is derived from ``seed``

Check = Callable[[Any], bool]
T = TypeVar("T")
_INF = float("inf")


class ConfigError(ValueError):
    """A run-config value that is missing, of the wrong type or out of range."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"run config {key!r} = {value!r} is invalid: expected {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class Key:
    """One run-config key: its name, type, default, check and what is allowed."""

    name: str
    kind: type
    default: Any
    check: Check
    allowed: str


def key(default: T, check: Check, allowed: str) -> T:
    """Declare a config field: its default, the check of a value and the words for it."""
    return dataclasses.field(  # type: ignore[no-any-return]
        default=default, metadata={"check": check, "allowed": allowed}
    )


def _in_range(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(value: Any) -> bool:
        above = value > lo if lo_open else value >= lo
        return bool(above and value <= hi)

    return check


def _any(_: Any) -> bool:
    return True


def _task_name(name: Any) -> bool:
    return bool(re.fullmatch(r"[a-z0-9][a-z0-9-]*", name))


def _device(value: Any) -> bool:
    return value in ("auto", "cpu", "cuda") or bool(re.fullmatch(r"cuda:\d+", value))


_SEED = _in_range(-1, 2**32 - 1)


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """One FedAvg experiment, in the paper's terms."""

    task: str = key("mnist-2nn", _task_name, "one of the registered tasks (tasks.registry)")
    partition: str = key(
        "iid", lambda v: v in KNOWN_PARTITIONS, f"one of {', '.join(KNOWN_PARTITIONS)}"
    )
    input_scaling: str = key(
        "standardised",
        lambda v: v in INPUT_SCALINGS,
        "standardised (mean 0.1307, sd 0.3081) or unit (pixels in [0, 1]); MNIST only",
    )
    init: str = key(
        "pytorch",
        lambda v: v in INIT_SCHEMES,
        "pytorch (PyTorch's default) or glorot (Glorot-uniform weights, zero biases)",
    )
    fraction_train: float = key(0.1, _in_range(0, 1), "C, a number in [0, 1]")
    local_epochs: int = key(1, _in_range(1, _INF), "E, an integer >= 1")
    batch_size: int = key(10, _in_range(0, _INF), "B, an integer >= 1, or 0 for B = inf")
    lr: float = key(0.1, _in_range(0, _INF, lo_open=True), "eta, a number > 0")
    lr_decay: float = key(1.0, _in_range(0, 1, lo_open=True), "a number in (0, 1]")
    strategy: str = key(
        "fedavg",
        lambda v: v in STRATEGIES,
        f"one of {', '.join(STRATEGIES)} (fedavg = the paper's)",
    )
    proximal_mu: float = key(0.0, _in_range(0, _INF), "FedProx's mu, a number >= 0")
    server_lr: float = key(
        0.0, _in_range(0, _INF), "a number >= 0 (0 = Flower's default: 1.0 fedavgm, 0.1 fedadam)"
    )
    server_momentum: float = key(0.0, _in_range(0, 1), "FedAvgM's momentum, a number in [0, 1]")
    dp_clipping_norm: float = key(
        0.0, _in_range(0, _INF), "S, a number >= 0 (0 = no DP clipping or noise)"
    )
    dp_noise_multiplier: float = key(
        0.0, _in_range(0, _INF), "z, a number >= 0 (noise std z * S / m)"
    )
    num_server_rounds: int = key(50, _in_range(1, _INF), "an integer >= 1")
    seed: int = key(0, _in_range(0, 2**32 - 1), "an integer in [0, 2**32)")
    model_seed: int = key(DERIVE, _SEED, "-1 (derive from seed) or >= 0")
    sampling_seed: int = key(DERIVE, _SEED, "-1 (derive from seed) or >= 0")
    partition_seed: int = key(DERIVE, _SEED, "-1 (derive from seed) or >= 0")
    target_accuracy: float = key(
        0.0, _in_range(0, 1), "a number in [0, 1] (0 = the paper's target for the task)"
    )
    stop_at_target: bool = key(False, _any, "true or false")
    eval_every: int = key(1, _in_range(1, _INF), "an integer >= 1")
    eval_batch_size: int = key(200, _in_range(1, _INF), "an integer >= 1")
    eval_max_examples: int = key(
        0, _in_range(0, _INF), "an integer >= 0 (0 = the whole central test set)"
    )
    fraction_evaluate: float = key(0.0, _in_range(0, 1), "a number in [0, 1]")
    min_nodes: int = key(1, _in_range(1, _INF), "an integer >= 1")
    node_wait_seconds: float = key(120.0, _in_range(0, _INF), "a number of seconds >= 0")
    round_timeout: float = key(3600.0, _in_range(0, _INF, lo_open=True), "a number of seconds > 0")
    max_update_norm: float = key(0.0, _in_range(0, _INF), "a number >= 0 (0 = no bound)")
    max_num_examples: int = key(0, _in_range(0, _INF), "an integer >= 0 (0 = no bound)")
    min_replies: int = key(1, _in_range(1, _INF), "an integer >= 1")
    max_rounds_without_update: int = key(
        3, _in_range(0, _INF), "an integer >= 0 (0 = never end a run for lack of updates)"
    )
    checkpoint_every: int = key(5, _in_range(0, _INF), "an integer >= 0 (0 = never)")
    resume_from: str = key("", _any, "a run directory or checkpoint file, or empty")
    inject_failure_rate: float = key(0.0, _in_range(0, 1), "a probability in [0, 1]")
    inject_delay_rate: float = key(0.0, _in_range(0, 1), "a probability in [0, 1]")
    inject_delay_seconds: float = key(0.0, _in_range(0, _INF), "a number of seconds >= 0")
    client_threads: int = key(1, _in_range(1, 256), "an integer in [1, 256]")
    # Where models train and evaluate: auto = cuda when available.
    device: str = key("auto", _device, "auto (cuda when available), cpu, cuda or cuda:N")
    data_dir: str = key("", _any, "a path, or empty for the default source")
    results_dir: str = key("results", bool, "a non-empty path")
    run_name: str = key("", lambda v: "/" not in v, "a name without '/' (empty = automatic)")

    @property
    def seeds(self) -> dict[str, int]:
        """Separate seeds for model init, client sampling and partitioning.

        Each one not set explicitly is derived from ``seed`` so that changing
        one (say, the partition) leaves the others as they were.
        """
        derived = np.random.SeedSequence(self.seed).generate_state(3, dtype=np.uint32)
        explicit = (self.model_seed, self.sampling_seed, self.partition_seed)
        names = ("model", "sampling", "partition")
        return {
            name: int(d) if value == DERIVE else value
            for name, value, d in zip(names, explicit, derived, strict=True)
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain JSON-able values, with the derived seeds."""
        values = dataclasses.asdict(self)
        values["seeds"] = self.seeds
        return values

    def describe(self) -> str:
        """A short name for the experiment in the paper's symbols."""
        batch = "inf" if self.batch_size == 0 else str(self.batch_size)
        scaling = "" if self.input_scaling == "standardised" else f"_{self.input_scaling}"
        scaling += "" if self.init == "pytorch" else f"_{self.init}"
        return (
            f"{self.task}_{self.partition}{scaling}_C{self.fraction_train:g}_E{self.local_epochs}"
            f"_B{batch}_lr{self.lr:g}"
        )


SCHEMA: dict[str, Key] = {
    f.name.replace("_", "-"): Key(
        name=f.name.replace("_", "-"),
        kind=type(f.default),
        default=f.default,
        check=f.metadata["check"],
        allowed=str(f.metadata["allowed"]),
    )
    for f in dataclasses.fields(ExperimentConfig)
}
"""Run-config key (hyphenated, as in pyproject.toml) -> its ``Key``, in declaration order."""


def _coerce(spec: Key, value: object) -> Any:
    kind = spec.kind
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str and isinstance(value, str):
        return value
    raise ConfigError(spec.name, value, f"a {kind.__name__}: {spec.allowed}")


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """``did you mean local-epochs?`` for a misspelt key, else the list of known keys."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return f"known keys: {', '.join(known)}"


def parse_config(
    run_config: Mapping[str, object],
    *,
    tasks: Collection[str] | None = None,
    ignore: tuple[str, ...] = (),
) -> ExperimentConfig:
    """Parse Flower's ``run_config`` into an ``ExperimentConfig``.

    Keys are hyphenated as in pyproject.toml; missing keys take the defaults
    of ``ExperimentConfig``. An unknown key is an error (a typo would
    otherwise be silently ignored), except keys under a dotted namespace such
    as ``wandb.project`` that belong to add-ons, and those in ``ignore``.
    ``tasks``, when given, are the names ``task`` may take (else any
    well-formed name passes here and the caller checks it).
    """
    values: dict[str, Any] = {}
    for name, raw in run_config.items():
        if name in ignore or "." in name:
            continue
        spec = SCHEMA.get(name)
        if spec is None:
            raise ConfigError(name, raw, f"a known key ({did_you_mean(name, SCHEMA)})")
        value = _coerce(spec, raw)
        if not spec.check(value):
            raise ConfigError(name, raw, _allowed(spec, tasks))
        values[name.replace("-", "_")] = value
    config = ExperimentConfig(**values)
    if tasks is not None and config.task not in tasks:  # given or the default
        raise ConfigError("task", config.task, _allowed(SCHEMA["task"], tasks))
    _check_together(config)
    return config


def _allowed(spec: Key, tasks: Collection[str] | None) -> str:
    return f"one of {', '.join(tasks)}" if spec.name == "task" and tasks else spec.allowed


def _check_together(config: ExperimentConfig) -> None:
    """Keys that mean something only with another: an unused value is an error, not ignored."""
    only_for = {
        "proximal-mu": (config.proximal_mu, ("fedprox",)),
        "server-lr": (config.server_lr, ("fedavgm", "fedadam")),
        "server-momentum": (config.server_momentum, ("fedavgm",)),
    }
    for name, (value, strategies) in only_for.items():
        if value and config.strategy not in strategies:
            raise ConfigError(
                name,
                value,
                f"0 unless strategy is {' or '.join(strategies)} (strategy = {config.strategy!r})",
            )
    if config.strategy != "fedavg" and config.fraction_train == 0:
        raise ConfigError(
            "fraction-train",
            0.0,
            f"C > 0 with strategy = {config.strategy!r} (Flower's "
            "strategies read C = 0 as no training; the paper's one client is strategy = fedavg)",
        )
    if config.dp_noise_multiplier and not config.dp_clipping_norm:
        raise ConfigError(
            "dp-noise-multiplier",
            config.dp_noise_multiplier,
            "0 unless dp-clipping-norm > 0 (the noise std is z * S / m)",
        )
