"""Table 2's MNIST CNN and Shakespeare blocks, rendered from results written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import table2_mnist, table2_shakespeare
from benchmarks.table_cells import splice

E5_B10 = "table2-shakespeare-{}-C0.1-E5-B10"


def write_run(
    directory: Path, *, lr: float, rows: list[dict[str, float]], **summary: object
) -> None:
    directory.mkdir(parents=True)
    config = {"task": "shakespeare-lstm", "batch_size": 10, "local_epochs": 5, "lr": lr}
    (directory / "config.json").write_text(json.dumps({"config": config}))
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summary:
        (directory / "summary.json").write_text(json.dumps(summary))


def test_cells_run_running_and_estimated(tmp_path: Path) -> None:
    """A chosen cell reads ours / paper (speedups), a running one its progress, the rest an
    estimate from the measured round: 15 s transport, 20 s evaluation, 25 s an epoch."""
    round_2 = {"round": 2, "test_accuracy": 0.31, "seconds": 160.0}
    round_2 |= {"clients_seconds": 125.0, "evaluate_seconds": 20.0}
    done = E5_B10.format("noniid")
    write_run(
        tmp_path / done / f"{done}_lr1.47",
        lr=1.47,
        rows=[{"round": 0, "test_accuracy": 0.0}, round_2],
        status="completed",
        rounds_to_target=30.5,
    )
    (tmp_path / done / "chosen.json").write_text(
        json.dumps({"row": done, "lr": 1.47, "run": f"{done}_lr1.47", "grid": {"1.47": 30.5}})
    )
    running = E5_B10.format("iid")
    write_run(
        tmp_path / running / f"{running}_lr0.68",
        lr=0.68,
        rows=[{"round": 0, "test_accuracy": 0.0}, {"round": 3, "test_accuracy": 0.3}],
    )
    table = table2_shakespeare.render(tmp_path)
    rows = {}  # (alg, E, B) -> the table's line
    for line in (line for line in table.splitlines() if line.startswith("| Fed")):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[(cells[0], cells[1], cells[2])] = line
    assert "**30.5** / 41 (— / 95.3x), eta 1.47" in rows[("FedAvg", "5", "10")]
    assert "in progress: eta 0.68, round 3, best 0.300" in rows[("FedAvg", "5", "10")]
    # E=5, B=50, non-IID: 228 rounds of budget, so evaluated every 5th round:
    # 3 x 152 x (15 + 20 / 5 + 5 x 0.51 x 25) s = 10.5 h.
    assert "not run (est. 10 h) / paper 152" in rows[("FedAvg", "5", "50")]
    assert table2_shakespeare.estimate_hours((15, 20, 25), 5, 50, 152, 5) == pytest.approx(
        3 * 152 * 82.75 / 3600
    )
    # FedSGD non-IID: 3 x 3906 x (15 + 4 + 0.97 x 25) s = 141 h.
    assert "not run (est. 141 h) / paper 3906" in rows[("FedSGD", "1", "inf")]


def test_the_table_goes_between_the_markers_of_the_docs() -> None:
    document = "intro\n<!-- table2-shakespeare -->\nold\n<!-- /table2-shakespeare -->\nend\n"
    markers = table2_shakespeare.MARKERS
    spliced = splice(document, "| new |\n", markers, name="doc")
    assert (
        spliced
        == "intro\n<!-- table2-shakespeare -->\n| new |\n<!-- /table2-shakespeare -->\nend\n"
    )
    with pytest.raises(SystemExit, match="markers"):
        splice("no markers", "| new |\n", markers, name="doc")
    assert all(m in table2_shakespeare.DOCS.read_text() for m in table2_shakespeare.MARKERS)


def write_cnn_run(directory: Path, *, epochs: int, round_seconds: float) -> None:
    directory.mkdir(parents=True)
    config = {"task": "mnist-cnn", "fraction_train": 0.1, "batch_size": 10, "local_epochs": epochs}
    (directory / "config.json").write_text(json.dumps({"config": config}))
    rows = [{"round": r, "seconds": round_seconds, "test_accuracy": 0.9} for r in range(1, 5)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_cnn_block_fits_its_round_to_our_runs_and_reads_chosen_cells(tmp_path: Path) -> None:
    """Rounds of 10 s at E=1 and 36 s at E=5 (one run slowed to 90 s, outvoted by the median):
    a = 3.5 s, b = 6.5 s an epoch."""
    e1, e5 = "table2-cnn-iid-C0.1-E1-B10", "table2-cnn-iid-C0.1-E5-B10"
    write_cnn_run(tmp_path / e1 / f"{e1}_lr0.1", epochs=1, round_seconds=10.0)
    for lr, seconds in ((0.0464, 36.0), (0.1, 36.0), (0.215, 90.0)):
        write_cnn_run(tmp_path / e5 / f"{e5}_lr{lr:g}", epochs=5, round_seconds=seconds)
    (tmp_path / e5 / f"{e5}_lr0.1" / "summary.json").write_text(
        json.dumps({"status": "completed", "rounds_to_target": 16.6})
    )
    (tmp_path / e5 / "chosen.json").write_text(
        json.dumps({"row": e5, "lr": 0.1, "run": f"{e5}_lr0.1", "grid": {"0.1": 16.6}})
    )
    assert table2_mnist.round_costs(tmp_path) == pytest.approx((3.5, 6.5))
    rows = {}
    for line in (line for line in table2_mnist.render(tmp_path).splitlines() if "| Fed" in line):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[(cells[1], cells[2])] = cells
    assert rows[("5", "10")][3] == "300"  # u = E 600 / B
    assert rows[("5", "10")][4] == "**16.6** / 20 (— / 31.3x), eta 0.1"
    # IID E=1, B=50: 3 x 65 x (3.5 + 1 x 0.9 x 6.5) s = 0.5 h.
    assert rows[("1", "50")][4] == "not run (est. 0.5 h) / paper 65"
    assert rows[("1", "10")][4].startswith("in progress: eta")
    assert all(m in table2_mnist.DOCS.read_text() for m in table2_mnist.MARKERS)
