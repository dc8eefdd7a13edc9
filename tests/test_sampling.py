import pytest

from strategies.sampling import clients_per_round, sample_clients


@pytest.mark.parametrize(
    ("fraction", "k", "m"),
    [
        (0.0, 100, 1),
        (0.1, 100, 10),
        (0.2, 100, 20),
        (0.5, 100, 50),
        (1.0, 100, 100),
        (0.29, 100, 29),
        (0.1, 5, 1),
        (0.5, 3, 1),
        (1.0, 1, 1),
    ],
)
def test_clients_per_round_is_max_of_floor_c_k_and_one(fraction: float, k: int, m: int) -> None:
    assert clients_per_round(fraction, k) == m


@pytest.mark.parametrize(("fraction", "k"), [(-0.1, 10), (1.5, 10), (0.1, 0)])
def test_clients_per_round_rejects_bad_input(fraction: float, k: int) -> None:
    with pytest.raises(ValueError):
        clients_per_round(fraction, k)


def test_sample_is_distinct_of_size_m_and_from_the_population() -> None:
    nodes = list(range(500, 600))
    chosen = sample_clients(nodes, 10, seed=3, server_round=1)
    assert len(chosen) == len(set(chosen)) == 10
    assert set(chosen) <= set(nodes)


def test_same_seed_and_round_give_the_same_clients_whatever_the_listing_order() -> None:
    nodes = list(range(100))
    first = sample_clients(nodes, 10, seed=7, server_round=4)
    again = sample_clients(list(reversed(nodes)), 10, seed=7, server_round=4)
    assert first == again


def test_rounds_and_seeds_differ() -> None:
    nodes = list(range(100))
    by_round = {tuple(sample_clients(nodes, 10, seed=7, server_round=r)) for r in range(1, 21)}
    by_seed = {tuple(sample_clients(nodes, 10, seed=s, server_round=1)) for s in range(20)}
    assert len(by_round) == 20
    assert len(by_seed) == 20


def test_sampling_is_uniform_over_clients() -> None:
    nodes = list(range(20))
    counts = dict.fromkeys(nodes, 0)
    for r in range(2000):
        for node in sample_clients(nodes, 5, seed=1, server_round=r):
            counts[node] += 1
    # Each client is drawn with probability 5/20 per round: 500 expected, sd ~19.
    assert all(420 < c < 580 for c in counts.values()), counts


def test_cannot_sample_more_than_available() -> None:
    with pytest.raises(ValueError, match="cannot sample 3 clients from 2"):
        sample_clients([1, 2], 3, seed=0, server_round=1)
