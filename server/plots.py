"""PNG plots of test accuracy against communication rounds, in the style of the paper's Figure 2.

Figure 2 of McMahan et al. plots test-set accuracy against communication
rounds with the target accuracy as a gray horizontal line and the y axis
zoomed near the target. Here the zoom starts at ``target - 0.05`` unless a
run stays below that (then just under the lowest run's median accuracy, so
every run compared is visible), and a dotted vertical line marks rounds-to-target when the run got
there. Rounds without central evaluation (``eval-every``) are skipped.

Figures are built with matplotlib's object API on the Agg canvas (no
``pyplot`` state, no display), at a fixed size: ``SIZE_INCHES`` x ``DPI``
pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from server.results import RunResults

SIZE_INCHES = (8.0, 5.0)
DPI = 100  # -> 800 x 500 pixels
RUN_PLOT = "accuracy.png"
ZOOM_BELOW_TARGET = 0.05
ZOOM_MARGIN = 0.01


def _evaluated(rows: Sequence[dict[str, Any]]) -> tuple[list[int], list[float]]:
    points = [(r["round"], r["test_accuracy"]) for r in rows if r["test_accuracy"] is not None]
    return [p[0] for p in points], [p[1] for p in points]


def describe(run: RunResults) -> str:
    """The run's name and its setting in the paper's symbols."""
    e = run.experiment
    if not e:
        return run.directory.name
    batch = "inf" if e.get("batch_size") == 0 else e.get("batch_size")
    setting = (
        f"{e.get('task')} {e.get('partition')}, C={e.get('fraction_train')}, "
        f"E={e.get('local_epochs')}, B={batch}, eta={e.get('lr')}"
    )
    return f"{run.directory.name}\n{setting}, K={run.config.get('num_clients')}"


def _new_figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_xlabel("Communication rounds")
    axes.set_ylabel("Test accuracy")
    axes.grid(True, alpha=0.3)
    return figure, axes


def zoom_limits(
    curves: Sequence[Sequence[float]], targets: Sequence[float]
) -> tuple[float, float] | None:
    """The y range: near the target, but low enough that every run is visible.

    The bottom is ``target - ZOOM_BELOW_TARGET`` or, when a run stays below that, a little
    under the lowest of the runs' median accuracies, so that at least the better half of
    every run's curve is in view (a zoom from the pooled median hid the weaker runs).
    """
    medians = [sorted(c)[len(c) // 2] for c in curves if c]
    if not medians:
        return None
    points = [a for c in curves for a in c]
    bottom = max(
        0.0, min(min(targets, default=1.0) - ZOOM_BELOW_TARGET, min(medians) - ZOOM_MARGIN)
    )
    top = min(1.0, max(*points, *targets) + ZOOM_MARGIN)
    return bottom, max(top, bottom + ZOOM_MARGIN)


def _zoom(axes: Axes, curves: Sequence[Sequence[float]], targets: Sequence[float]) -> None:
    limits = zoom_limits(curves, targets)
    if limits is not None:
        axes.set_ylim(*limits)


def _target_line(axes: Axes, target: float) -> None:
    axes.axhline(target, color="0.6", linewidth=1.5, zorder=0)
    axes.annotate(
        f"target {target:g}",
        xy=(1.0, target),
        xycoords=("axes fraction", "data"),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        color="0.4",
        fontsize=8,
    )


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path


def plot_run(run: RunResults, path: Path | None = None) -> Path:
    """Test accuracy against rounds for one run, with its target; returns the PNG's path."""
    figure, axes = _new_figure()
    rounds, accuracies = _evaluated(run.rows)
    target = run.summary.get("target_accuracy") or run.experiment.get("target")
    axes.plot(rounds, accuracies, color="tab:blue", linewidth=1.5, label="FedAvg")
    targets = [float(target)] if target else []
    for value in targets:
        _target_line(axes, value)
    reached = run.summary.get("rounds_to_target")
    if reached is not None:
        axes.axvline(reached, color="tab:blue", linestyle=":", linewidth=1)
        axes.annotate(
            f"{reached:.1f} rounds",
            xy=(reached, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(3, 0),
            textcoords="offset points",
            fontsize=8,
            color="tab:blue",
        )
    _zoom(axes, [accuracies], targets)
    axes.set_title(describe(run), fontsize=9)
    return _save(figure, path or run.directory / RUN_PLOT)


def plot_comparison(runs: Sequence[RunResults], labels: Sequence[str], path: Path) -> Path:
    """Test accuracy against rounds for several runs on one axes, one target line per target."""
    if len(labels) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(labels)} labels")
    figure, axes = _new_figure()
    curves: list[list[float]] = []
    targets: set[float] = set()
    for run, label in zip(runs, labels, strict=True):
        rounds, accuracies = _evaluated(run.rows)
        curves.append(accuracies)
        axes.plot(rounds, accuracies, linewidth=1.3, label=label)
        target = run.summary.get("target_accuracy") or run.experiment.get("target")
        if target:
            targets.add(float(target))
    for target in sorted(targets):
        _target_line(axes, target)
    _zoom(axes, curves, sorted(targets))
    axes.legend(fontsize=8, loc="lower right")
    return _save(figure, path)
