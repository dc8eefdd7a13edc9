import numpy as np
import pytest

from strategies.aggregation import WeightedMean, weighted_average


def _updates(rng: np.random.Generator, m: int) -> list[dict[str, np.ndarray]]:
    return [
        {
            "w": rng.normal(size=(4, 3)).astype(np.float32),
            "b": rng.normal(size=3).astype(np.float32),
        }
        for _ in range(m)
    ]


def test_equals_numpy_average_weighted_by_n_k() -> None:
    rng = np.random.default_rng(0)
    updates = _updates(rng, 7)
    weights = [600, 300, 1200, 5, 77, 600, 42]
    result = weighted_average(updates, weights)
    for name in ("w", "b"):
        oracle = np.average(np.stack([u[name] for u in updates]), axis=0, weights=weights)
        np.testing.assert_allclose(result[name], oracle, rtol=1e-6, atol=1e-7)
        assert result[name].dtype == np.float32


def test_normalises_over_the_sampled_clients_only() -> None:
    # Erratum 4: sum_k (n_k / m_t) w_k with m_t over S_t, not over all K.
    updates = [{"w": np.full(2, 1.0)}, {"w": np.full(2, 4.0)}]
    result = weighted_average(updates, [100, 300])
    np.testing.assert_allclose(result["w"], [3.25, 3.25])


def test_equal_weights_give_the_plain_mean() -> None:
    rng = np.random.default_rng(1)
    updates = _updates(rng, 4)
    result = weighted_average(updates, [600] * 4)
    np.testing.assert_allclose(result["w"], np.mean([u["w"] for u in updates], axis=0), rtol=1e-6)


def test_streaming_order_does_not_matter() -> None:
    rng = np.random.default_rng(2)
    updates = _updates(rng, 5)
    weights = [1, 2, 3, 4, 5]
    forward = weighted_average(updates, weights)
    backward = weighted_average(updates[::-1], weights[::-1])
    np.testing.assert_allclose(forward["w"], backward["w"], rtol=1e-6)


def test_rejects_bad_weights_and_mismatched_names() -> None:
    mean = WeightedMean()
    with pytest.raises(ValueError, match="positive"):
        mean.add({"w": np.zeros(2)}, 0)
    mean.add({"w": np.zeros(2)}, 1)
    with pytest.raises(ValueError, match="names differ"):
        mean.add({"v": np.zeros(2)}, 1)
    with pytest.raises(ValueError, match="no update"):
        WeightedMean().result()
