"""Behaviour pinned across refactors: a seeded 2NN run gives the accuracy curve recorded on main.

The values were recorded from main (commit 905401a) before the server's round
loop was rewritten to stream replies into the average (issue 11). A new
summation order may move the last float bits, so the curve is compared to 4
decimals, not bit for bit.
"""

from __future__ import annotations

from pathlib import Path

from server.results import read_metrics
from tests.conftest import real_mnist_dir
from tests.test_apps import base_config, run_server

# round -> (test accuracy, test loss, train loss); round 0 is w_0.
SYNTHETIC_CURVE = {
    0: (0.165, 2.3023, None),
    1: (1.0, 1.8993, 2.1455),
    2: (1.0, 1.2538, 1.6251),
    3: (1.0, 0.55, 0.9212),
    4: (1.0, 0.1591, 0.3782),
}
REAL_MNIST_CURVE = {
    0: (0.132, 2.2974, None),
    1: (0.8515, 0.5883, 1.3988),
    2: (0.903, 0.3626, 0.7132),
    3: (0.9165, 0.305, 0.5287),
}


def curve(run_dir: Path) -> dict[int, tuple[float | None, ...]]:
    return {
        r["round"]: tuple(
            None if r[k] is None else round(r[k], 4)
            for k in ("test_accuracy", "test_loss", "train_loss")
        )
        for r in read_metrics(run_dir)
    }


def test_synthetic_2nn_curve_is_unchanged(synthetic_mnist: Path, tmp_path: Path) -> None:
    config = base_config(
        synthetic_mnist,
        tmp_path,
        **{"num-server-rounds": 4, "fraction-train": 0.4, "local-epochs": 1, "seed": 3},
    )
    run_server(config, nodes=10)
    assert curve(tmp_path / "t") == SYNTHETIC_CURVE


def test_real_mnist_2nn_curve_is_unchanged(tmp_path: Path) -> None:
    data = real_mnist_dir()
    config = base_config(
        data,
        tmp_path,
        **{
            "num-server-rounds": 3,
            "fraction-train": 0.1,
            "local-epochs": 1,
            "batch-size": 10,
            "eval-max-examples": 2000,
        },
    )
    run_server(config, nodes=100)
    assert curve(tmp_path / "t") == REAL_MNIST_CURVE
