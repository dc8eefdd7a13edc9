"""Run paper rows in simulation, pick eta from a grid, and tabulate ours beside the paper's.

    FEDAVG_DATA_DIR=/path/to/data python -m benchmarks.reproduce \\
        table1-2nn-iid-C0.1-E1-B10 --lr-grid 0.0464,0.1,0.215

For each row, every eta of the grid is run in the order given (up to ``--grid-rounds``
rounds, stopping at the target; once one eta has reached the target in R rounds, the
next ones run at most ceil(R) rounds, since a run that has not reached it by then cannot
win); the eta that reaches the target in the fewest rounds
(or, if none does, the best accuracy) wins, as in the paper's protocol of
picking the best eta per setting. If the winning run was cut short by
``--grid-rounds`` before reaching the target, it is rerun with the row's full
round budget. A run found stopped part-way (its directory holds a checkpoint but no
final summary) resumes from that checkpoint, so a grid stopped in one sitting is finished
in the next by the same command. Rounds-to-target are read from the runs' own ``summary.json``
(best-so-far accuracy, linearly interpolated). ``--table-only`` rebuilds the
markdown table from the result directories without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.paper import Row, config_string, rows_by_name
from benchmarks.table1 import render as render_table1
from benchmarks.table2_mnist import render as render_table2_cnn
from benchmarks.table2_shakespeare import render as render_table2_shakespeare
from protocol.config import INIT_SCHEMES, INPUT_SCALINGS
from server.checkpoint import CHECKPOINT_FILE, load_checkpoint

DEFAULT_SCALING = INPUT_SCALINGS[0]
DEFAULT_INIT = INIT_SCHEMES[0]

REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPT = REPO / "deploy" / "simulation" / "run.sh"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "reproduction"


@dataclass(frozen=True)
class Attempt:
    """One finished run of a row with one eta."""

    lr: float
    directory: Path
    summary: dict[str, Any]

    @property
    def reached(self) -> bool:
        return self.summary.get("rounds_to_target") is not None

    def sort_key(self) -> tuple[float, float]:
        if self.reached:
            return (0.0, float(self.summary["rounds_to_target"]))
        return (1.0, -float(self.summary.get("best_accuracy") or 0.0))


def _diverged(summary: dict[str, object]) -> bool:
    """A run the stall guard ended: every client's update was rejected (NaN or Inf losses at
    an eta too large), rounds in a row. For the grid it is an eta that does not reach the
    target, not a failure of the runner."""
    return summary.get("status") == "failed" and "no valid update" in str(summary.get("error"))


def _final(summary: dict[str, object]) -> bool:
    return summary.get("status") == "completed" or _diverged(summary)


def result_key(row: Row, input_scaling: str, init: str = DEFAULT_INIT) -> str:
    """The row's results directory: its name, suffixed by inputs and init that are not the
    defaults (``<row>-unit``, ``<row>-glorot``)."""
    key = row.name if input_scaling == DEFAULT_SCALING else f"{row.name}-{input_scaling}"
    return key if init == DEFAULT_INIT else f"{key}-{init}"


def run_once(
    row: Row,
    lr: float,
    rounds: int,
    results: Path,
    *,
    num_supernodes: int,
    tag: str,
    input_scaling: str = DEFAULT_SCALING,
    init: str = DEFAULT_INIT,
) -> Attempt:
    """Run one simulation of ``row`` with ``lr`` and return its summary."""
    key = result_key(row, input_scaling, init)
    name = f"{key}_lr{lr:g}{tag}"
    directory = results / key / name
    summary_path = directory / "summary.json"
    if summary_path.is_file() and _final(json.loads(summary_path.read_text())):
        print(f"  {name}: already done", flush=True)
        return Attempt(lr, directory, json.loads(summary_path.read_text()))
    values = {
        **row.run_config(),
        "lr": lr,
        "num-server-rounds": rounds,
        "results-dir": str(results / key),
        "run-name": name,
    }
    if (directory / CHECKPOINT_FILE).is_file():
        # A run stopped part-way (a session that ended, a killed grid): go on from its last
        # checkpoint, bit-exact, into the same directory, instead of starting over.
        checkpoint_round = load_checkpoint(directory).round
        print(f"  {name}: resuming after round {checkpoint_round}", flush=True)
        values["resume-from"] = str(directory)
    elif directory.exists():
        # Stopped before its first checkpoint: nothing worth keeping.
        print(f"  {name}: removing an unfinished run with no checkpoint", flush=True)
        shutil.rmtree(directory)
    if input_scaling != DEFAULT_SCALING:
        values["input-scaling"] = input_scaling
    if init != DEFAULT_INIT:
        values["init"] = init
    command = ["bash", str(RUN_SCRIPT), str(num_supernodes), "-c", config_string(values)]
    log_path = results / key / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"  {name}: running ({rounds} rounds max), log {log_path}", flush=True)
    with log_path.open("a" if "resume-from" in values else "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if done.returncode != 0 and not _diverged(summary):
        raise SystemExit(f"{name} failed (exit {done.returncode}); see {log_path}")
    if _diverged(summary):  # an eta too large: a grid point that does not reach the target
        print(f"  {name}: diverged ({summary['error'][:120]})", flush=True)
        return Attempt(lr, directory, summary)
    reached, best = summary["rounds_to_target"], summary["best_accuracy"]
    print(
        f"  {name}: rounds to {row.target:.0%} = "
        f"{'not reached' if reached is None else f'{reached:.1f}'}, "
        f"best {'-' if best is None else f'{best:.4f}'}, {summary['wall_seconds']:.0f} s",
        flush=True,
    )
    return Attempt(lr, directory, summary)


def reproduce_row(
    row: Row,
    grid: list[float],
    grid_rounds: int,
    results: Path,
    *,
    num_supernodes: int,
    input_scaling: str = DEFAULT_SCALING,
    init: str = DEFAULT_INIT,
) -> Attempt:
    def run(lr: float, rounds: int, tag: str) -> Attempt:
        return run_once(
            row,
            lr,
            rounds,
            results,
            num_supernodes=num_supernodes,
            tag=tag,
            input_scaling=input_scaling,
            init=init,
        )

    key = result_key(row, input_scaling, init)
    done = _grid_so_far(results / key)
    attempts: list[Attempt] = []
    for lr in [*done, *(lr for lr in grid if lr not in done)]:
        # A run that has not reached the target by the best run's rounds cannot beat it.
        reached = [float(a.summary["rounds_to_target"]) for a in attempts if a.reached]
        cap = min([grid_rounds, row.rounds, *(math.ceil(r) for r in reached)])
        attempts.append(run(lr, cap, ""))
    best = min(attempts, key=Attempt.sort_key)
    if not best.reached and grid_rounds < row.rounds:
        best = run(best.lr, row.rounds, "_full")
    (results / key / "chosen.json").write_text(
        json.dumps(
            {
                "row": row.name,
                "input_scaling": input_scaling,
                "init": init,
                "lr": best.lr,
                "run": best.directory.name,
                "grid": {f"{a.lr:g}": a.summary.get("rounds_to_target") for a in attempts},
                "grid_best_accuracy": {
                    f"{a.lr:g}": a.summary.get("best_accuracy") for a in attempts
                },
                "grid_rounds_run": {
                    f"{a.lr:g}": a.summary.get("rounds_completed") for a in attempts
                },
            },
            indent=2,
        )
        + "\n"
    )
    return best


def _grid_so_far(directory: Path) -> list[float]:
    """The etas of a row already in its ``chosen.json``: a new grid extends, never drops, them."""
    chosen = directory / "chosen.json"
    if not chosen.is_file():
        return []
    return [float(lr) for lr in json.loads(chosen.read_text())["grid"]]


def markdown_table(results: Path) -> str:
    """Our rounds beside the paper's for every row with a ``chosen.json``."""
    rows = rows_by_name()
    lines = [
        "| row | target | paper rounds | our rounds | eta (grid: rounds) | best accuracy | "
        "rounds run | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for chosen_path in sorted(results.glob("*/chosen.json")):
        chosen = json.loads(chosen_path.read_text())
        row = rows[chosen["row"]]
        summary = json.loads((chosen_path.parent / chosen["run"] / "summary.json").read_text())
        ours = summary["rounds_to_target"]
        grid = ", ".join(
            f"{lr}: {'—' if r is None else f'{r:.1f}'}" for lr, r in chosen["grid"].items()
        )
        scaling = chosen.get("input_scaling", DEFAULT_SCALING)
        label = row.name if scaling == DEFAULT_SCALING else f"{row.name} ({scaling} inputs)"
        if chosen.get("init", DEFAULT_INIT) != DEFAULT_INIT:
            label += f" ({chosen['init']} init)"
        lines.append(
            f"| {label} | {row.target:.0%} | {row.paper_rounds or '—'} | "
            f"{'not reached' if ours is None else f'**{ours:.1f}**'} | {chosen['lr']:g} ({grid}) | "
            f"{summary['best_accuracy']:.4f} | {summary['rounds_completed']} | "
            f"{summary['wall_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", help="preset names (benchmarks/presets/*.toml stems)")
    parser.add_argument(
        "--lr-grid", default="", help="comma-separated etas (default: the preset's)"
    )
    parser.add_argument("--grid-rounds", type=int, default=10**9, help="round cap of grid runs")
    parser.add_argument("--num-supernodes", type=int, default=100, help="K")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument(
        "--input-scaling",
        choices=INPUT_SCALINGS,
        default=DEFAULT_SCALING,
        help="MNIST inputs (run config input-scaling); non-default results go to <row>-<scaling>/",
    )
    parser.add_argument(
        "--init",
        choices=INIT_SCHEMES,
        default=DEFAULT_INIT,
        help="w_0's draw (run config init); non-default results go to <row>-<init>/",
    )
    parser.add_argument(
        "--probe-rounds",
        type=int,
        default=0,
        help="instead of a grid, run each row this many rounds at its preset eta to measure "
        "seconds per round (for the cost estimates of cells not run; results in probes/)",
    )
    args = parser.parse_args()
    known = rows_by_name()
    unknown = [name for name in args.rows if name not in known]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; see benchmarks/presets/")
    if args.rows and not args.table_only and not os.environ.get("FEDAVG_DATA_DIR"):
        print("note: FEDAVG_DATA_DIR is not set; the hub will be used", file=sys.stderr)
    for name in [] if args.table_only else args.rows:
        row = known[name]
        if args.probe_rounds:
            print(f"{name}: timing probe, {args.probe_rounds} rounds", flush=True)
            run_once(
                row,
                row.lr,
                args.probe_rounds,
                args.results / "probes",
                num_supernodes=args.num_supernodes,
                tag="_probe",
            )
            continue
        grid = [float(v) for v in args.lr_grid.split(",")] if args.lr_grid else [row.lr]
        print(f"{name} (paper: {row.paper_rounds or '—'} rounds), eta grid {grid}", flush=True)
        reproduce_row(
            row,
            grid,
            args.grid_rounds,
            args.results,
            num_supernodes=args.num_supernodes,
            input_scaling=args.input_scaling,
            init=args.init,
        )
    table = markdown_table(args.results)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "table.md").write_text(table)
    table1 = render_table1(args.results)
    (args.results / "table1.md").write_text(table1)
    cnn = render_table2_cnn(args.results)
    (args.results / "table2-cnn.md").write_text(cnn)
    shakespeare = render_table2_shakespeare(args.results)
    (args.results / "table2-shakespeare.md").write_text(shakespeare)
    print(table)
    print(table1)
    print(cnn)
    print(shakespeare)


if __name__ == "__main__":
    main()
