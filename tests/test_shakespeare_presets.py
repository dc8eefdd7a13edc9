"""The Table 2 Shakespeare presets parse and say what their names say."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from server.config import parse_config
from tasks.registry import target_accuracy

PRESETS = Path(__file__).resolve().parents[1] / "benchmarks" / "presets"
# Table 2, Shakespeare rows: name -> (E, B) with B = 0 for inf.
ROWS = {"fedsgd": (1, 0), "E1-B50": (1, 50), "E5-Binf": (5, 0), "E1-B10": (1, 10)}
ROWS |= {"E5-B50": (5, 50), "E5-B10": (5, 10)}


def test_every_table2_shakespeare_row_has_a_preset_per_partition() -> None:
    found = sorted(p.stem for p in PRESETS.glob("table2-shakespeare-*.toml"))
    assert found == sorted(
        f"table2-shakespeare-{part}-C0.1-{row}" for part in ("iid", "noniid") for row in ROWS
    )
    for path in PRESETS.glob("table2-shakespeare-*.toml"):
        config = parse_config(tomllib.loads(path.read_text()))
        match = re.fullmatch(r"table2-shakespeare-(iid|noniid)-C0\.1-(.+)", path.stem)
        assert match is not None and config.run_name == path.stem
        assert config.task == "shakespeare-lstm" and config.partition == match.group(1)
        assert (config.local_epochs, config.batch_size) == ROWS[match.group(2)]
        assert config.fraction_train == 0.1 and target_accuracy(config) == 0.54
