"""Flower's strategy wrappers wrap FederatedAveraging's round loop."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

from strategies.fedavg import FederatedAveraging
from strategies.records import to_named_arrays
from tests.fakes import FakeGrid, set_task_identity
from tests.test_strategy import GLOBAL, honest

set_task_identity()


def test_server_side_clipping_bounds_each_rounds_update() -> None:
    """Client k moves every weight by k + 1; clipped to norm 0.5, every update is the same."""
    grid = FakeGrid(3, honest)
    fedavg = FederatedAveraging(fraction_train=1.0)
    clipping = DifferentialPrivacyServerSideFixedClipping(
        fedavg, noise_multiplier=0.0, clipping_norm=0.5, num_sampled_clients=3
    )
    initial = ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})
    result = fedavg.start(grid, initial, num_rounds=2, outer=clipping)

    final = to_named_arrays(result.arrays)
    size = sum(v.size for v in GLOBAL.values())
    # Unclipped, round 1 alone would move each weight by the n_k-weighted mean offset, 7/3.
    step = 0.5 / np.sqrt(size)
    for name, value in final.items():
        np.testing.assert_allclose(value, GLOBAL[name] + 2 * step, rtol=1e-5)
    assert [r.model_updated for r in (fedavg.records[1], fedavg.records[2])] == [True, True]
    assert len(grid.sent) == 6  # both rounds went through our loop and sampling
    np.testing.assert_allclose(fedavg.global_arrays["w"], final["w"])


def test_without_a_wrapper_the_same_round_is_not_clipped() -> None:
    grid = FakeGrid(3, honest)
    fedavg = FederatedAveraging(fraction_train=1.0)
    initial = ArrayRecord({k: Array(v) for k, v in GLOBAL.items()})
    final = to_named_arrays(fedavg.start(grid, initial, num_rounds=1).arrays)
    # Offsets 1, 2, 3 weighted by n_k = 100, 200, 300.
    assert final["w"][0, 0] == pytest.approx((1 * 100 + 2 * 200 + 3 * 300) / 600)
