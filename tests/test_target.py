import pytest

from strategies.target import best_so_far, rounds_to_target


def test_best_so_far_is_monotone() -> None:
    assert best_so_far([0.1, 0.5, 0.4, 0.6, 0.2]) == [0.1, 0.5, 0.5, 0.6, 0.6]


def test_linear_interpolation_between_evaluated_rounds() -> None:
    assert rounds_to_target([0, 10, 20], [0.1, 0.96, 0.98], 0.97) == pytest.approx(15.0)


def test_uses_the_best_so_far_curve_not_the_raw_one() -> None:
    # The dip at round 3 does not count: the curve stays at 0.96 until round 4.
    rounds, acc = [1, 2, 3, 4], [0.90, 0.96, 0.50, 0.98]
    assert rounds_to_target(rounds, acc, 0.97) == pytest.approx(3.5)


def test_exact_hit_and_never_reached() -> None:
    assert rounds_to_target([0, 1, 2], [0.5, 0.97, 0.99], 0.97) == pytest.approx(1.0)
    assert rounds_to_target([0, 1, 2], [0.5, 0.6, 0.7], 0.97) is None
    assert rounds_to_target([0, 1], [0.98, 0.99], 0.97) == 0.0


def test_rejects_unsorted_rounds() -> None:
    with pytest.raises(ValueError):
        rounds_to_target([2, 1], [0.1, 0.2], 0.5)
