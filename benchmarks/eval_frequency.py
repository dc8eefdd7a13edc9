"""Does reading rounds-to-target another way explain our rounds? (issue 24, item 3)

From the committed curves of each row's chosen run (``benchmarks/results/reproduction/``,
evaluated every round), re-read rounds-to-target as a reader of the paper might have:

- ``every k``: only every k-th round evaluated (k = 1, 5, 10, 20), the paper's way otherwise
  (best-so-far accuracy, linear interpolation between evaluated rounds);
- ``first at/above``: the first evaluated round whose own accuracy reaches the target, no
  best-so-far and no interpolation (the most pessimistic plain reading);
- ``stays above``: the first round from which every later evaluation stays at or above the
  target (a reading that would not count a lucky spike).

No run is made: the figures come from the runs' ``metrics.jsonl``. Runs stop at the target
(``stop-at-target``), so an ``every k`` reading whose next evaluation would come after the
run's last round is not known: ``stopped`` in the table. Interpolating between evaluations k
rounds apart moves a reading by less than k rounds either way.

    python -m benchmarks.eval_frequency
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from strategies.target import rounds_to_target

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "reproduction"
EVERY = (1, 5, 10, 20)


def curve(run_dir: Path) -> tuple[list[int], list[float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluated = [(r["round"], r["test_accuracy"]) for r in rows if r["test_accuracy"] is not None]
    return [r for r, _ in evaluated], [a for _, a in evaluated]


def readings(rounds: list[int], accuracy: list[float], target: float) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in EVERY:
        kept = [(r, a) for r, a in zip(rounds, accuracy, strict=True) if r % k == 0]
        out[f"every {k}"] = rounds_to_target([r for r, _ in kept], [a for _, a in kept], target)
    out["first at/above"] = next(
        (float(r) for r, a in zip(rounds, accuracy, strict=True) if a >= target), None
    )
    stays = None
    for i in range(len(rounds) - 1, -1, -1):
        if accuracy[i] < target:
            break
        stays = float(rounds[i])
    out["stays above"] = stays
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    header = ["row", "paper", *(f"every {k}" for k in EVERY), "first at/above", "stays above"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for chosen_path in sorted(args.results.glob("*/chosen.json")):
        chosen = json.loads(chosen_path.read_text())
        run_dir = chosen_path.parent / chosen["run"]
        config = json.loads((run_dir / "config.json").read_text())["config"]
        target = float(config["target"])
        rounds, accuracy = curve(run_dir)
        read = readings(rounds, accuracy, target)
        paper = _paper_rounds(chosen["row"])
        cells = [
            ("stopped" if name.startswith("every") else "—") if v is None else f"{v:.1f}"
            for name, v in read.items()
        ]
        label = chosen_path.parent.name
        print(f"| {label} | {paper if paper is not None else '—'} | " + " | ".join(cells) + " |")


def _paper_rounds(row: str) -> int | None:
    from benchmarks.paper import rows_by_name

    found = rows_by_name().get(row)
    return None if found is None else found.paper_rounds


if __name__ == "__main__":
    main()
