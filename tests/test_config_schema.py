"""One schema for the run config: pyproject's defaults and README's key table follow it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from protocol.config import SCHEMA, ExperimentConfig
from tasks.registry import paper_targets, task_names

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


def test_the_schema_and_the_dataclass_agree() -> None:
    config = ExperimentConfig()
    for name, spec in SCHEMA.items():
        assert getattr(config, name.replace("-", "_")) == spec.default
        assert spec.check(spec.default), name


def test_tasks_and_targets_come_from_the_registry() -> None:
    assert task_names() == ("mnist-2nn", "mnist-cnn", "shakespeare-lstm", "bench-wide")
    paper = {"mnist-2nn": 0.97, "mnist-cnn": 0.99, "shakespeare-lstm": 0.54}
    assert {k: v for k, v in paper_targets().items() if k in paper} == paper
    from benchmarks.paper import TARGETS

    assert TARGETS == paper_targets()
