"""Plot a run's learning curve (central test accuracy per round) to a PNG.

    python -m benchmarks.shakespeare_curve RUN_DIR [OUT.png] [--baseline FREQ]

RUN_DIR is a results directory (metrics.jsonl, summary.json). The optional
baseline (e.g. the frequency of the most common character) is drawn as a
horizontal line; so is the run's target accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from server.results import read_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--baseline", type=float, default=None)
    args = parser.parse_args()
    rows = [r for r in read_metrics(args.run_dir) if r["test_accuracy"] is not None]
    config = json.loads((args.run_dir / "config.json").read_text())["config"]
    rounds = [r["round"] for r in rows]
    accuracy = [r["test_accuracy"] for r in rows]
    best = [max(accuracy[: i + 1]) for i in range(len(accuracy))]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rounds, accuracy, marker=".", label="test accuracy")
    ax.plot(rounds, best, linestyle="--", label="best so far (the paper's curve)")
    ax.axhline(config["target"], color="grey", linestyle=":", label=f"target {config['target']}")
    if args.baseline is not None:
        ax.axhline(args.baseline, color="red", linestyle=":", label="most common character")
    ax.set_xlabel("communication round")
    ax.set_ylabel("accuracy")
    ax.set_title(args.run_dir.name, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = args.out or args.run_dir / "learning-curve.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}: {len(rows)} evaluated rounds, best accuracy {max(accuracy):.4f}")


if __name__ == "__main__":
    main()
