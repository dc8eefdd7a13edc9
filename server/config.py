"""The experiment's configuration: parsed once, at the edge, into a frozen object.

``run_config`` (pyproject's ``[tool.flwr.app.config]`` plus ``flwr run -c``
overrides) says which experiment to run. Every key is checked here, before any
round starts; a bad value raises ``ConfigError`` naming the key, the value and
what is allowed.

The paper's symbols: C = ``fraction-train``, E = ``local-epochs``,
B = ``batch-size`` (0 stands for B = inf: the whole local data set is one
batch), eta = ``lr``. K is not configured: it is the number of connected
SuperNodes (``num-supernodes`` in simulation).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KNOWN_TASKS = ("mnist-2nn", "mnist-cnn", "shakespeare-lstm")
KNOWN_PARTITIONS = ("iid", "noniid")
# MNIST inputs: standardised with the training set's mean and standard deviation, or the
# pixels scaled to [0, 1]; the paper does not say which it used.
INPUT_SCALINGS = ("standardised", "unit")
DERIVE = -1  # a seed of -1 is derived from ``seed``

# The paper's target accuracy per task (section 3).
PAPER_TARGETS = {"mnist-2nn": 0.97, "mnist-cnn": 0.99, "shakespeare-lstm": 0.54}


class ConfigError(ValueError):
    """A run-config value that is missing, of the wrong type or out of range."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"run config {key!r} = {value!r} is invalid: expected {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """One FedAvg experiment, in the paper's terms."""

    task: str = "mnist-2nn"
    partition: str = "iid"
    input_scaling: str = "standardised"  # MNIST only; see INPUT_SCALINGS
    fraction_train: float = 0.1  # C
    local_epochs: int = 1  # E
    batch_size: int = 10  # B; 0 = inf (FedSGD when E = 1)
    lr: float = 0.1  # eta
    lr_decay: float = 1.0  # eta_t = eta * lr_decay ** (t - 1)
    num_server_rounds: int = 50
    seed: int = 0
    model_seed: int = DERIVE
    sampling_seed: int = DERIVE
    partition_seed: int = DERIVE
    target_accuracy: float = 0.0  # 0 = the paper's target for the task
    stop_at_target: bool = False
    eval_every: int = 1
    eval_batch_size: int = 200
    eval_max_examples: int = 0  # 0 = the whole central test set; else a seeded sample
    fraction_evaluate: float = 0.0  # federated evaluation on clients' local splits
    min_nodes: int = 1
    node_wait_seconds: float = 120.0
    round_timeout: float = 3600.0
    max_update_norm: float = 0.0  # 0 = no bound
    max_num_examples: int = 0  # 0 = no bound on a reply's n_k
    min_replies: int = 1
    max_rounds_without_update: int = 3  # 0 = never fail for lack of updates
    checkpoint_every: int = 5  # 0 = never
    resume_from: str = ""
    inject_failure_rate: float = 0.0
    inject_delay_rate: float = 0.0
    inject_delay_seconds: float = 0.0
    client_threads: int = 1
    device: str = "auto"  # where models train and evaluate: auto = cuda when available
    data_dir: str = ""
    results_dir: str = "results"
    run_name: str = ""

    @property
    def target(self) -> float:
        """The target accuracy in force: the configured one or the paper's."""
        return self.target_accuracy or PAPER_TARGETS[self.task]

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
        values["target"] = self.target
        values["seeds"] = self.seeds
        return values

    def describe(self) -> str:
        """A short name for the experiment in the paper's symbols."""
        batch = "inf" if self.batch_size == 0 else str(self.batch_size)
        scaling = "" if self.input_scaling == "standardised" else f"_{self.input_scaling}"
        return (
            f"{self.task}_{self.partition}{scaling}_C{self.fraction_train:g}_E{self.local_epochs}"
            f"_B{batch}_lr{self.lr:g}"
        )


Check = Callable[[Any], bool]


@dataclass(frozen=True)
class _Field:
    kind: type
    check: Check
    allowed: str


def _in_range(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(value: Any) -> bool:
        above = value > lo if lo_open else value >= lo
        return bool(above and value <= hi)

    return check


_INF = float("inf")
_FIELDS: dict[str, _Field] = {
    "task": _Field(str, lambda v: v in KNOWN_TASKS, f"one of {', '.join(KNOWN_TASKS)}"),
    "partition": _Field(
        str, lambda v: v in KNOWN_PARTITIONS, f"one of {', '.join(KNOWN_PARTITIONS)}"
    ),
    "input-scaling": _Field(
        str,
        lambda v: v in INPUT_SCALINGS,
        "standardised (mean 0.1307, sd 0.3081) or unit (pixels in [0, 1]); MNIST only",
    ),
    "fraction-train": _Field(float, _in_range(0, 1), "C, a number in [0, 1]"),
    "local-epochs": _Field(int, _in_range(1, _INF), "E, an integer >= 1"),
    "batch-size": _Field(int, _in_range(0, _INF), "B, an integer >= 1, or 0 for B = inf"),
    "lr": _Field(float, _in_range(0, _INF, lo_open=True), "eta, a number > 0"),
    "lr-decay": _Field(float, _in_range(0, 1, lo_open=True), "a number in (0, 1]"),
    "num-server-rounds": _Field(int, _in_range(1, _INF), "an integer >= 1"),
    "seed": _Field(int, _in_range(0, 2**32 - 1), "an integer in [0, 2**32)"),
    "model-seed": _Field(int, _in_range(-1, 2**32 - 1), "-1 (derive from seed) or >= 0"),
    "sampling-seed": _Field(int, _in_range(-1, 2**32 - 1), "-1 (derive from seed) or >= 0"),
    "partition-seed": _Field(int, _in_range(-1, 2**32 - 1), "-1 (derive from seed) or >= 0"),
    "target-accuracy": _Field(
        float, _in_range(0, 1), "a number in [0, 1] (0 = the paper's target for the task)"
    ),
    "stop-at-target": _Field(bool, lambda v: True, "true or false"),
    "eval-every": _Field(int, _in_range(1, _INF), "an integer >= 1"),
    "eval-batch-size": _Field(int, _in_range(1, _INF), "an integer >= 1"),
    "eval-max-examples": _Field(
        int, _in_range(0, _INF), "an integer >= 0 (0 = the whole central test set)"
    ),
    "fraction-evaluate": _Field(float, _in_range(0, 1), "a number in [0, 1]"),
    "min-nodes": _Field(int, _in_range(1, _INF), "an integer >= 1"),
    "node-wait-seconds": _Field(float, _in_range(0, _INF), "a number of seconds >= 0"),
    "round-timeout": _Field(float, _in_range(0, _INF, lo_open=True), "a number of seconds > 0"),
    "max-update-norm": _Field(float, _in_range(0, _INF), "a number >= 0 (0 = no bound)"),
    "max-num-examples": _Field(int, _in_range(0, _INF), "an integer >= 0 (0 = no bound)"),
    "min-replies": _Field(int, _in_range(1, _INF), "an integer >= 1"),
    "max-rounds-without-update": _Field(
        int, _in_range(0, _INF), "an integer >= 0 (0 = never end a run for lack of updates)"
    ),
    "checkpoint-every": _Field(int, _in_range(0, _INF), "an integer >= 0 (0 = never)"),
    "resume-from": _Field(str, lambda v: True, "a run directory or checkpoint file, or empty"),
    "inject-failure-rate": _Field(float, _in_range(0, 1), "a probability in [0, 1]"),
    "inject-delay-rate": _Field(float, _in_range(0, 1), "a probability in [0, 1]"),
    "inject-delay-seconds": _Field(float, _in_range(0, _INF), "a number of seconds >= 0"),
    "client-threads": _Field(int, _in_range(1, 256), "an integer in [1, 256]"),
    "device": _Field(
        str,
        lambda v: v in ("auto", "cpu", "cuda") or bool(re.fullmatch(r"cuda:\d+", v)),
        "auto (cuda when available), cpu, cuda or cuda:N",
    ),
    "data-dir": _Field(str, lambda v: True, "a path, or empty for the default source"),
    "results-dir": _Field(str, bool, "a non-empty path"),
    "run-name": _Field(str, lambda v: "/" not in v, "a name without '/' (empty = automatic)"),
}


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """``did you mean local-epochs?`` for a misspelt key, else the list of known keys."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}?"
    return f"known keys: {', '.join(known)}"


def _coerce(key: str, value: object, kind: type) -> Any:
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
    raise ConfigError(key, value, f"a {kind.__name__}: {_FIELDS[key].allowed}")


def parse_config(
    run_config: Mapping[str, object], *, ignore: tuple[str, ...] = ()
) -> ExperimentConfig:
    """Parse Flower's ``run_config`` into an ``ExperimentConfig``.

    Keys are hyphenated as in pyproject.toml; missing keys take the defaults
    of ``ExperimentConfig``. An unknown key is an error (a typo would
    otherwise be silently ignored), except keys under a dotted namespace such
    as ``wandb.project`` that belong to add-ons, and those in ``ignore``.
    """
    values: dict[str, Any] = {}
    for key, raw in run_config.items():
        if key in ignore or "." in key:
            continue
        field = _FIELDS.get(key)
        if field is None:
            raise ConfigError(key, raw, f"a known key ({did_you_mean(key, _FIELDS)})")
        value = _coerce(key, raw, field.kind)
        if not field.check(value):
            raise ConfigError(key, raw, field.allowed)
        values[key.replace("-", "_")] = value
    return ExperimentConfig(**values)
