"""Table 2's Shakespeare block (LSTM, C = 0.1, 54%) from our results, in the paper's layout.

Rows are the paper's (FedSGD, then FedAvg by E and B, with its u), columns IID and non-IID.
A cell reads ``ours / paper (speedup over FedSGD ours / paper), eta`` from the row's
``chosen.json`` (``benchmarks.reproduce``). A row being run shows its progress (the eta
and round reached, the best accuracy so far); a cell not run shows what its grid would
cost: ``not run (est. N h)``, three runs of the paper's rounds x seconds per round, with

    seconds per round = fixed + E x c(B) x epoch seconds

measured on this machine: ``fixed`` (a round's central evaluation, every round or every
5th as the preset says, and its transport) and ``epoch seconds`` (one local epoch of the
sampled clients at B = 10, two ClientApps at once) are the medians of a Shakespeare run's
rounds (its ``seconds``, ``clients_seconds`` and ``evaluate_seconds``); c(B), the cost of
an example at batch size B relative to B = 10, is ``BATCH_COST`` (measured with one torch
thread: 10.6, 5.4 and 10.3 ms per line at B = 10, 50 and inf).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.paper import TABLE2_SHAKESPEARE, rows_by_name
from benchmarks.shakespeare_corpus import PAPER_U

GRID_SIZE = 3
BATCH_COST = {10: 1.0, 50: 0.51, 0: 0.97}
FEDSGD = (1, 0)


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
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


def round_costs(results: Path) -> tuple[float, float, float] | None:
    """(transport s, evaluation s, one epoch of the sampled clients at B = 10, s) per round,
    medians over the rounds (from round 2) of our E, B = 10 Shakespeare runs."""
    transport, evaluation, epoch = [], [], []
    for config_path in sorted(results.glob("*/*/config.json")):
        values = json.loads(config_path.read_text()).get("config", {})
        if values.get("task") != "shakespeare-lstm" or values.get("batch_size") != 10:
            continue
        for row in _metrics(config_path.parent):
            if row.get("round", 0) < 2 or not row.get("seconds"):
                continue
            clients, evaluate = float(row["clients_seconds"]), float(row["evaluate_seconds"])
            transport.append(float(row["seconds"]) - clients - evaluate)
            evaluation.append(evaluate)
            epoch.append(clients / int(values["local_epochs"]))
    if not epoch:
        return None
    return statistics.median(transport), statistics.median(evaluation), statistics.median(epoch)


def estimate_hours(
    costs: tuple[float, float, float], epochs: int, batch: int, rounds: int, eval_every: int
) -> float:
    transport, evaluation, epoch = costs
    per_round = transport + evaluation / eval_every + epochs * BATCH_COST[batch] * epoch
    return GRID_SIZE * rounds * per_round / 3600


def _progress(row_dir: Path) -> str | None:
    """A row whose grid is under way: its latest run's eta, round and best accuracy."""
    runs = [d for d in sorted(row_dir.glob("*_lr*")) if d.is_dir() and _metrics(d)]
    if not runs:
        return None
    latest = max(runs, key=lambda d: (d / "metrics.jsonl").stat().st_mtime)
    rows = _metrics(latest)
    config = json.loads((latest / "config.json").read_text()).get("config", {})
    best = max(float(r.get("test_accuracy") or 0.0) for r in rows)
    return (
        f"running: eta {config.get('lr', '?'):g}, round {rows[-1]['round']}, "
        f"best {best:.3f} ({len(runs)} of the grid's runs started)"
    )


def render(results: Path) -> str:
    rows = rows_by_name()
    costs = round_costs(results)
    header = [
        "| alg | E | B | u (paper) | IID: ours / paper (speedup), eta | "
        "non-IID: ours / paper (speedup), eta |",
        "|---|---|---|---|---|---|",
    ]
    fedsgd: dict[str, float | None] = {}
    for partition in ("iid", "noniid"):
        chosen = results / rows[f"table2-shakespeare-{partition}-C0.1-fedsgd"].name / "chosen.json"
        fedsgd[partition] = _rounds(results, chosen) if chosen.is_file() else None
    body = []
    for (epochs, batch), paper in TABLE2_SHAKESPEARE.items():
        cells = []
        for index, partition in enumerate(("iid", "noniid")):
            setting = "fedsgd" if (epochs, batch) == FEDSGD else f"E{epochs}-B{batch or 'inf'}"
            row = rows[f"table2-shakespeare-{partition}-C0.1-{setting}"]
            paper_rounds, paper_fedsgd = paper[index], TABLE2_SHAKESPEARE[FEDSGD][index]
            chosen_path = results / row.name / "chosen.json"
            if chosen_path.is_file():
                chosen = json.loads(chosen_path.read_text())
                ours = _rounds(results, chosen_path)
                base = fedsgd[partition]
                speedup = "—" if ours is None or base is None else f"{base / ours:.1f}x"
                paper_speedup = f"{paper_fedsgd / paper_rounds:.1f}x"
                shown = "not reached" if ours is None else f"**{ours:.1f}**"
                cells.append(
                    f"{shown} / {paper_rounds} ({speedup} / {paper_speedup}), "
                    f"eta {float(chosen['lr']):g}"
                )
                continue
            progress = _progress(results / row.name)
            if progress is not None:
                cells.append(f"{progress} / paper {paper_rounds}")
            elif costs is None:
                cells.append(f"not run / paper {paper_rounds}")
            else:
                eval_every = row.run_config()["eval-every"]
                assert isinstance(eval_every, int)
                hours = estimate_hours(costs, epochs, batch, paper_rounds, eval_every)
                cells.append(f"not run (est. {hours:.0f} h) / paper {paper_rounds}")
        alg = "FedSGD" if (epochs, batch) == FEDSGD else "FedAvg"
        body.append(
            f"| {alg} | {epochs} | {batch or 'inf'} | {PAPER_U[(epochs, batch)]} | "
            f"{cells[0]} | {cells[1]} |"
        )
    note = (
        ""
        if costs is None
        else (
            f"\nEstimates: a round costs {costs[0]:.0f} s of transport + {costs[1]:.0f} s per "
            f"central evaluation + E x c(B) x {costs[2]:.0f} s (one epoch of the sampled "
            "clients at B = 10), times the paper's rounds, times a grid of 3 etas.\n"
        )
    )
    return "\n".join(header + body) + "\n" + note


def _rounds(results: Path, chosen_path: Path) -> float | None:
    chosen = json.loads(chosen_path.read_text())
    summary = json.loads((chosen_path.parent / chosen["run"] / "summary.json").read_text())
    value = summary.get("rounds_to_target")
    return None if value is None else float(value)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "shakespeare.md"
MARKERS = ("<!-- table2-shakespeare -->", "<!-- /table2-shakespeare -->")


def splice(document: str, table: str) -> str:
    """``document`` with ``table`` between the ``MARKERS`` (which must be there)."""
    begin, end = MARKERS
    if begin not in document or end not in document:
        raise SystemExit(f"{DOCS}: the markers {begin} ... {end} are missing")
    head, rest = document.split(begin, 1)
    return f"{head}{begin}\n{table}{end}{rest.split(end, 1)[1]}"


def main() -> None:
    import argparse

    from benchmarks.reproduce import DEFAULT_RESULTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--docs", action="store_true", help=f"also write it into {DOCS.name}")
    args = parser.parse_args()
    table = render(args.results)
    print(table)
    if args.docs:
        DOCS.write_text(splice(DOCS.read_text(), table))


if __name__ == "__main__":
    main()
