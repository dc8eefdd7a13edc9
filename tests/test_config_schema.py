"""One schema for the run config: pyproject's defaults and README's key table follow it."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from protocol.config import SCHEMA, ConfigError, ExperimentConfig
from tasks.registry import paper_targets, parse_run_config, target_accuracy, task_names

REPO = Path(__file__).resolve().parents[1]


def readme_key_table() -> dict[str, str]:
    """The run-config table of README.md: key -> its default column as written."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| key | paper | default |"))
    rows: dict[str, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.replace("\\|", "").strip("|").split("|")]
        names = re.findall(r"`([^`]+)`", cells[0])
        values = [v.strip() for v in cells[2].split(",")]
        for i, name in enumerate(names):
            rows[name] = values[i] if len(values) == len(names) else cells[2]
    return rows


def same_value(written: str, default: object) -> bool:
    text = written.strip("`")
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, (int, float)):
        return float(text) == default
    return text in (str(default), f'"{default}"')


def test_pyproject_has_every_key_with_the_schemas_default() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    table = {
        k: v
        for k, v in pyproject["tool"]["flwr"]["app"]["config"].items()
        if not isinstance(v, dict)  # add-on tables such as [...config.wandb]
    }
    assert list(table) == list(SCHEMA)
    assert {k: v for k, v in table.items() if k != "num-server-rounds"} == {
        k: s.default for k, s in SCHEMA.items() if k != "num-server-rounds"
    }
    for name, value in table.items():
        assert type(value) is SCHEMA[name].kind, (name, value)


def test_readme_documents_every_key_with_the_schemas_default() -> None:
    rows = readme_key_table()
    assert set(rows) == set(SCHEMA)
    wrong = {k: v for k, v in rows.items() if not same_value(v, SCHEMA[k].default)}
    assert not wrong


# The defaults as README's key table and the paper state them, written out here rather than
# read from the code: the 2NN, IID, C = 0.1, E = 1, B = 10, eta = 0.1 setting of Table 1.
DOCUMENTED_DEFAULTS: dict[str, object] = {
    "task": "mnist-2nn",
    "partition": "iid",
    "input-scaling": "standardised",
    "init": "pytorch",
    "fraction-train": 0.1,
    "local-epochs": 1,
    "batch-size": 10,
    "lr": 0.1,
    "lr-decay": 1.0,
    "strategy": "fedavg",
    "proximal-mu": 0.0,
    "server-lr": 0.0,
    "server-momentum": 0.0,
    "dp-clipping-norm": 0.0,
    "dp-noise-multiplier": 0.0,
    "num-server-rounds": 50,
    "seed": 0,
    "model-seed": -1,
    "sampling-seed": -1,
    "partition-seed": -1,
    "target-accuracy": 0.0,
    "stop-at-target": False,
    "eval-every": 1,
    "eval-batch-size": 200,
    "eval-max-examples": 0,
    "fraction-evaluate": 0.0,
    "min-nodes": 1,
    "node-wait-seconds": 120.0,
    "round-timeout": 3600.0,
    "max-update-norm": 0.0,
    "max-num-examples": 0,
    "min-replies": 1,
    "max-rounds-without-update": 3,
    "checkpoint-every": 5,
    "resume-from": "",
    "inject-failure-rate": 0.0,
    "inject-delay-rate": 0.0,
    "inject-delay-seconds": 0.0,
    "client-threads": 1,
    "device": "auto",
    "data-dir": "",
    "results-dir": "results",
    "run-name": "",
}

# (key, values allowed at the edges of its documented range, values just outside it).
DOCUMENTED_RANGES: list[tuple[str, list[object], list[object]]] = [
    ("task", ["mnist-2nn", "mnist-cnn", "shakespeare-lstm"], ["mnist-rnn"]),
    ("partition", ["iid", "noniid"], ["dirichlet"]),
    ("input-scaling", ["standardised", "unit"], ["minmax"]),
    ("init", ["pytorch", "glorot"], ["kaiming"]),
    ("fraction-train", [0.0, 1.0], [-0.1, 1.1]),
    ("local-epochs", [1], [0]),
    ("batch-size", [0, 1], [-1]),
    ("lr", [1e-6], [0.0, -0.1]),
    ("lr-decay", [1.0, 1e-6], [0.0, 1.01]),
    ("strategy", ["fedavg", "flower-fedavg", "fedprox", "fedavgm", "fedadam"], ["fedyogi"]),
    # Alone (strategy = fedavg) a non-zero mu, server-lr or momentum is refused: only 0 here.
    ("proximal-mu", [0.0], [-0.1]),
    ("server-lr", [0.0], [-0.1]),
    ("server-momentum", [0.0], [-0.1, 1.1]),
    ("dp-clipping-norm", [0.0, 1.0], [-1.0]),
    ("dp-noise-multiplier", [0.0], [-1.0]),
    ("num-server-rounds", [1], [0]),
    ("seed", [0, 2**32 - 1], [-1, 2**32]),
    ("model-seed", [-1, 0], [-2]),
    ("sampling-seed", [-1, 0], [-2]),
    ("partition-seed", [-1, 0], [-2]),
    ("target-accuracy", [0.0, 1.0], [-0.1, 1.1]),
    ("eval-every", [1], [0]),
    ("eval-batch-size", [1], [0]),
    ("eval-max-examples", [0], [-1]),
    ("fraction-evaluate", [0.0, 1.0], [1.1]),
    ("min-nodes", [1], [0]),
    ("node-wait-seconds", [0.0], [-1.0]),
    ("round-timeout", [0.5], [0.0]),
    ("max-update-norm", [0.0], [-1.0]),
    ("max-num-examples", [0], [-1]),
    ("min-replies", [1], [0]),
    ("max-rounds-without-update", [0], [-1]),
    ("checkpoint-every", [0], [-1]),
    ("inject-failure-rate", [0.0, 1.0], [1.1]),
    ("inject-delay-rate", [0.0, 1.0], [1.1]),
    ("inject-delay-seconds", [0.0], [-1.0]),
    ("client-threads", [1, 256], [0, 257]),
    ("device", ["auto", "cpu", "cuda", "cuda:3"], ["tpu", "cuda:x", "cuda3"]),
    ("results-dir", ["r"], [""]),
    ("run-name", ["", "x"], ["a/b"]),
]


def test_the_schema_and_the_dataclass_hold_the_documented_defaults_and_types() -> None:
    assert {k: (type(s.default), s.default) for k, s in SCHEMA.items()} == {
        k: (type(v), v) for k, v in DOCUMENTED_DEFAULTS.items()
    }
    assert {k: s.kind for k, s in SCHEMA.items()} == {
        k: type(v) for k, v in DOCUMENTED_DEFAULTS.items()
    }
    fields = dataclasses.asdict(ExperimentConfig())
    assert {k.replace("_", "-"): v for k, v in fields.items()} == DOCUMENTED_DEFAULTS


@pytest.mark.parametrize(("key", "allowed", "refused"), DOCUMENTED_RANGES)
def test_each_key_allows_its_documented_range_and_refuses_beyond_it(
    key: str, allowed: list[object], refused: list[object]
) -> None:
    for value in allowed:
        assert getattr(parse_run_config({key: value}), key.replace("-", "_")) == value, value
    for value in refused:
        with pytest.raises(ConfigError) as caught:
            parse_run_config({key: value})
        assert (caught.value.key, caught.value.value) == (key, value)


PAPER_TARGETS = {"mnist-2nn": 0.97, "mnist-cnn": 0.99, "shakespeare-lstm": 0.54}


def test_tasks_and_targets_come_from_the_registry() -> None:
    from benchmarks.paper import TARGETS, all_rows

    assert task_names() == ("mnist-2nn", "mnist-cnn", "shakespeare-lstm", "bench-wide")
    every = {**PAPER_TARGETS, "bench-wide": 1.0}
    assert paper_targets() == every
    assert TARGETS == every
    for task, target in every.items():  # target-accuracy = 0 stands for the paper's target
        assert target_accuracy(parse_run_config({"task": task})) == target
    assert target_accuracy(parse_run_config({"task": "mnist-cnn", "target-accuracy": 0.9})) == 0.9
    assert {r.task: r.run_config()["target-accuracy"] for r in all_rows()} == PAPER_TARGETS
    # The presets on disk (benchmarks/presets/, written by python -m benchmarks.paper).
    presets = sorted((REPO / "benchmarks" / "presets").glob("table*.toml"))
    assert len(presets) == len(all_rows())
    for preset in presets:
        model = preset.name.split("-")[1]
        task = {"2nn": "mnist-2nn", "cnn": "mnist-cnn", "shakespeare": "shakespeare-lstm"}[model]
        written = tomllib.loads(preset.read_text())["target-accuracy"]
        assert written == PAPER_TARGETS[task], preset.name
