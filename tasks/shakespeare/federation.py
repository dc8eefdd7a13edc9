"""The paper's Shakespeare clients (section 3), built from roles and their lines.

- **Roles**: every speaking role of every play with at least ``MIN_LINES`` (2)
  lines; each keeps its lines in play order. The last
  ``max(floor(0.2 n), 1)`` of a role's n lines are its test lines, the rest
  its training lines (the paper's temporal split, "rounded up to at least one
  line"; the floor is that of the paper's authors' own preprocessing script
  as published in LEAF, so a role of 2 to 9 lines has 1 test line).
- **noniid** (natural): client k is role k.
- **iid**: the same number of clients; all the chosen roles' training lines
  are shuffled together and dealt into K parts of equal line counts (within
  one), and so are their test lines. The train/test split stays the roles'
  own, as the paper says ("using an identical train/test split").
- **K** (the number of clients, ``num-partitions``): K = N, the number of
  roles, is the paper's setting. K < N takes a seeded random subset of K roles
  (the same for both partitions and every node), for CPU-sized runs. K > N
  is an error.
- The central test set is the union of the test lines of **all N roles**
  whatever K is: the paper's test set, and known to the server before any
  node connects.

Seeds: the role subset and the IID shuffle use the partition seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.shakespeare.lines import LineExamples

MIN_LINES = 2
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Role:
    """One speaking role of one play: a client of the natural partition."""

    client_id: str  # "<play>_<ROLE NAME>"
    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class ClientText:
    """The lines one client holds, and its examples (one per line)."""

    client_id: str
    train_lines: tuple[str, ...]
    test_lines: tuple[str, ...]

    def examples(self) -> tuple[LineExamples, LineExamples]:
        """(train, test): n_k = len(train), the number of training lines."""
        return LineExamples.of_lines(self.train_lines), LineExamples.of_lines(self.test_lines)


class FederationError(ValueError):
    """K clients that the corpus cannot provide."""


def split_lines(lines: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """First 80% train, last ``max(floor(0.2 n), 1)`` lines test; needs n >= 2."""
    if len(lines) < MIN_LINES:
        raise ValueError(f"a role needs at least {MIN_LINES} lines, got {len(lines)}")
    num_test = max(int(len(lines) * TEST_FRACTION), 1)
    return tuple(lines[:-num_test]), tuple(lines[-num_test:])


def build_roles(plays: Sequence[tuple[str, dict[str, list[str]]]]) -> list[Role]:
    """Every role with at least two lines, in play order then order of first speech."""
    roles = []
    for play, speakers in plays:
        for name, lines in speakers.items():
            if len(lines) >= MIN_LINES:
                train, test = split_lines(lines)
                roles.append(Role(client_id=f"{play}_{name}", train=train, test=test))
    return roles


def choose_roles(num_roles: int, num_clients: int, seed: int) -> list[int]:
    """Indices of the K roles in play: all of them, or a seeded subset in corpus order."""
    if not 1 <= num_clients <= num_roles:
        raise FederationError(
            f"num-partitions K={num_clients} but the corpus has {num_roles} roles with "
            f"at least {MIN_LINES} lines: use K = {num_roles} (the paper's setting) or a "
            "smaller K for a seeded subset of roles"
        )
    if num_clients == num_roles:
        return list(range(num_roles))
    chosen = np.random.default_rng(seed).choice(num_roles, size=num_clients, replace=False)
    return sorted(int(i) for i in chosen)


def _deal(lines: list[str], num_clients: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    order = rng.permutation(len(lines))
    return [tuple(lines[i] for i in part) for part in np.array_split(order, num_clients)]


def federate(
    roles: Sequence[Role], partition: str, num_clients: int, seed: int
) -> list[ClientText]:
    """The K clients of ``partition`` (``noniid`` or ``iid``); see the module docstring."""
    chosen = [roles[i] for i in choose_roles(len(roles), num_clients, seed)]
    if partition == "noniid":
        return [ClientText(r.client_id, r.train, r.test) for r in chosen]
    if partition != "iid":
        raise ValueError(f"unknown partition {partition!r}: expected iid or noniid")
    rng = np.random.default_rng([seed, 1])  # independent of the subset draw
    train = _deal([line for r in chosen for line in r.train], num_clients, rng)
    # Every role has >= 1 train and >= 1 test line, so K <= N parts are never empty.
    test = _deal([line for r in chosen for line in r.test], num_clients, rng)
    return [ClientText(f"iid_{k:04d}", train[k], test[k]) for k in range(num_clients)]


def central_test_set(roles: Sequence[Role]) -> LineExamples:
    """Every role's test lines, in corpus order: the paper's test set."""
    return LineExamples.of_lines([line for r in roles for line in r.test])
