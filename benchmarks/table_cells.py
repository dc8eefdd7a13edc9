"""What the Table 2 renderers share: a row's chosen rounds, a grid's progress, splicing docs.

A row's results live in ``<results>/<row name>/``: one directory per eta run
(``<row>_lr<eta>``, with ``config.json``, ``metrics.jsonl`` and, once finished,
``summary.json``) and ``chosen.json`` once ``benchmarks.reproduce`` has finished the grid.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def metrics_rows(run_dir: Path) -> list[dict[str, Any]]:
    """A run's ``metrics.jsonl`` rows; a torn last line (a run being written) is skipped."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def chosen_rounds(row_dir: Path) -> tuple[float | None, float] | None:
    """(rounds to target or None if not reached, eta) of a finished grid; None if not finished."""
    chosen_path = row_dir / "chosen.json"
    if not chosen_path.is_file():
        return None
    chosen = json.loads(chosen_path.read_text())
    summary = json.loads((row_dir / chosen["run"] / "summary.json").read_text())
    value = summary.get("rounds_to_target")
    return (None if value is None else float(value)), float(chosen["lr"])


def progress(row_dir: Path) -> str | None:
    """A row whose grid is under way: its latest run's eta, round and best accuracy."""
    runs = [d for d in sorted(row_dir.glob("*_lr*")) if d.is_dir() and metrics_rows(d)]
    if not runs:
        return None
    latest = max(runs, key=lambda d: (d / "metrics.jsonl").stat().st_mtime)
    rows = metrics_rows(latest)
    config = json.loads((latest / "config.json").read_text()).get("config", {})
    best = max(float(r.get("test_accuracy") or 0.0) for r in rows)
    lr = config.get("lr")
    return (
        f"in progress: eta {'?' if lr is None else f'{float(lr):g}'}, round {rows[-1]['round']}, "
        f"best {best:.3f} ({len(runs)} of the grid's runs started)"
    )


def splice(document: str, table: str, markers: tuple[str, str], *, name: str) -> str:
    """``document`` with ``table`` between the two ``markers`` (which must be there)."""
    begin, end = markers
    if begin not in document or end not in document:
        raise SystemExit(f"{name}: the markers {begin} ... {end} are missing")
    head, rest = document.split(begin, 1)
    return f"{head}{begin}\n{table}{end}{rest.split(end, 1)[1]}"


def cell(
    ours: tuple[float | None, float] | None,
    base: float | None,
    *,
    paper_rounds: int,
    paper_base: int,
) -> str:
    """A finished cell: ``ours / paper (speedup over the base row: ours / paper), eta``."""
    assert ours is not None
    rounds, lr = ours
    speedup = "—" if rounds is None or base is None else f"{base / rounds:.1f}x"
    shown = "not reached" if rounds is None else f"**{rounds:.1f}**"
    return f"{shown} / {paper_rounds} ({speedup} / {paper_base / paper_rounds:.1f}x), eta {lr:g}"


def grid_cell(
    results: Path,
    row_name: str,
    base_name: str,
    *,
    paper_rounds: int,
    paper_base: int,
    estimate: str | None,
) -> str:
    """One cell of a Table 2 block: finished (``cell``), under way (``progress``), or not run
    with the ``estimate`` of what its grid would cost (``None``: no timing to estimate from)."""
    ours = chosen_rounds(results / row_name)
    if ours is not None:
        base = chosen_rounds(results / base_name)
        return cell(
            ours,
            None if base is None else base[0],
            paper_rounds=paper_rounds,
            paper_base=paper_base,
        )
    under_way = progress(results / row_name)
    if under_way is not None:
        return f"{under_way} / paper {paper_rounds}"
    if estimate is None:
        return f"not run / paper {paper_rounds}"
    return f"not run (est. {estimate}) / paper {paper_rounds}"


def table_cli(
    render: Callable[[Path], str], docs: Path, markers: tuple[str, str], description: str
) -> None:
    """Print a block rendered from ``--results``; with ``--docs``, write it into ``docs`` too."""
    from benchmarks.reproduce import DEFAULT_RESULTS

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--docs", action="store_true", help=f"also write it into {docs.name}")
    args = parser.parse_args()
    table = render(args.results)
    print(table)
    if args.docs:
        docs.write_text(splice(docs.read_text(), table, markers, name=str(docs)))
