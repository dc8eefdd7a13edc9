"""Shakespeare samples, clients and data sources: windows, splits, partitions, the corpus."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tasks.mnist.data import DataUnavailableError
from tasks.shakespeare.data import load_directory, load_roles, roles_from_windows
from tasks.shakespeare.federation import (
    FederationError,
    Role,
    build_roles,
    central_test_set,
    choose_roles,
    federate,
    split_lines,
)
from tasks.shakespeare.model import LSTM_PARAMETERS, PAPER_PARAMETERS, CharLSTM
from tasks.shakespeare.windows import PAD, SEQUENCE_LENGTH, CharWindows, decode
from tests.conftest import SHARED_DATA

REAL_PLAYS = SHARED_DATA / "shakespeare-gutenberg"


def test_each_character_is_the_label_of_the_80_before_it() -> None:
    windows = CharWindows.of_lines(["To be, or not", "  to   be:"])
    text = "To be, or not to be:"
    assert len(windows) == len(text)
    inputs, labels = windows.batch(np.array([0, 3, len(text) - 1]))
    assert inputs.shape == (3, SEQUENCE_LENGTH) and inputs.dtype.is_floating_point is False
    assert decode(labels.numpy()) == "Tb:"
    assert int(inputs[0].max()) == PAD  # the first character has only padding before it
    assert decode(inputs[1].numpy()) == "To "
    assert decode(inputs[2].numpy()) == text[:-1]
    assert int((inputs[1] == PAD).sum()) == SEQUENCE_LENGTH - 3


def test_windows_are_cut_lazily_from_one_byte_per_character() -> None:
    windows = CharWindows.of_lines(["x" * 50_000])
    assert windows.text.nbytes == 50_000 + SEQUENCE_LENGTH  # not 50,000 x 80
    inputs, _ = windows.batch(np.array([49_999]))
    assert decode(inputs[0].numpy()) == "x" * SEQUENCE_LENGTH


def test_the_union_of_test_sets_never_crosses_roles() -> None:
    union = CharWindows.concatenate([CharWindows.of_lines(["abc"]), CharWindows.of_lines(["defg"])])
    inputs, labels = union.batch(np.arange(len(union)))
    assert decode(labels.numpy()) == "abcdefg"
    assert decode(inputs[3].numpy()) == ""  # "d" starts a new role: padding only


def test_the_split_is_the_papers_first_80_last_20_at_least_one_line() -> None:
    assert split_lines(["a", "b"]) == (("a",), ("b",))
    assert split_lines([str(i) for i in range(10)]) == (
        tuple(str(i) for i in range(8)),
        ("8", "9"),
    )
    assert [len(t) for t in split_lines([str(i) for i in range(9)])] == [8, 1]
    with pytest.raises(ValueError, match="at least 2 lines"):
        split_lines(["alone"])


def test_roles_with_fewer_than_two_lines_are_dropped() -> None:
    roles = build_roles([("tempest", {"A": ["1", "2", "3"], "B": ["only"], "C": ["x", "y"]})])
    assert [r.client_id for r in roles] == ["tempest_A", "tempest_C"]
    assert roles[0].train == ("1", "2") and roles[0].test == ("3",)


def _roles(n: int) -> list[Role]:
    return [
        Role(f"play_R{i}", tuple(f"r{i} line {j}" for j in range(4 + i)), (f"r{i} test",))
        for i in range(n)
    ]


def test_noniid_is_one_client_per_role_and_k_below_n_is_a_seeded_subset() -> None:
    roles = _roles(10)
    assert [c.client_id for c in federate(roles, "noniid", 10, seed=0)] == [
        r.client_id for r in roles
    ]
    subset = choose_roles(10, 4, seed=3)
    assert subset == sorted(subset) and len(set(subset)) == 4
    assert choose_roles(10, 4, seed=3) == subset and choose_roles(10, 4, seed=4) != subset
    with pytest.raises(FederationError, match="K=11 but the corpus has 10 roles"):
        federate(roles, "noniid", 11, seed=0)


def test_iid_deals_the_same_lines_evenly_keeping_the_train_test_split() -> None:
    roles = _roles(6)
    natural = federate(roles, "noniid", 6, seed=1)
    iid = federate(roles, "iid", 6, seed=1)
    assert len(iid) == 6
    assert sorted(line for c in iid for line in c.train_lines) == sorted(
        line for c in natural for line in c.train_lines
    )
    assert sorted(line for c in iid for line in c.test_lines) == sorted(
        line for c in natural for line in c.test_lines
    )
    counts = [len(c.train_lines) for c in iid]
    assert max(counts) - min(counts) <= 1
    # shuffled across clients: client 0 is not role 0
    assert set(iid[0].train_lines) != set(natural[0].train_lines)
    assert federate(roles, "iid", 6, seed=1) == iid
    assert federate(roles, "iid", 6, seed=2) != iid


def test_the_central_test_set_is_every_roles_test_lines() -> None:
    roles = _roles(5)
    assert len(central_test_set(roles)) == sum(len(" ".join(r.test)) for r in roles)


def test_the_lstm_has_866560_parameters_18_below_the_papers() -> None:
    model = CharLSTM()
    count = sum(p.numel() for p in model.parameters())
    # Embedding(256, 8); each LSTM layer 4 gates x (input + hidden weights + PyTorch's two
    # bias vectors); Linear(256, 256).
    lstm1 = 4 * 256 * (8 + 256) + 2 * 4 * 256
    lstm2 = 4 * 256 * (256 + 256) + 2 * 4 * 256
    by_hand = 256 * 8 + lstm1 + lstm2 + (256 * 256 + 256)
    assert count == LSTM_PARAMETERS == by_hand
    assert PAPER_PARAMETERS - count == 18
    logits = model(CharWindows.of_lines(["hello world"]).batch(np.arange(3))[0])
    assert logits.shape == (3, 256)


def test_hub_windows_rebuild_the_role_text() -> None:
    text = "Now is the winter of our discontent made glorious summer by this sun of York; " * 3
    xs = [text[i : i + SEQUENCE_LENGTH] for i in range(len(text) - SEQUENCE_LENGTH)]
    ys = [text[i + SEQUENCE_LENGTH] for i in range(len(text) - SEQUENCE_LENGTH)]
    (role,) = roles_from_windows([("RICHARD", xs, ys)])
    assert " ".join(role.train + role.test) == " ".join(text.split())
    with pytest.raises(DataUnavailableError, match="not consecutive"):
        roles_from_windows([("RICHARD", [xs[0], xs[2]], ys[:2])])


def test_hub_rows_are_partitioned_by_character_with_natural_id_partitioner() -> None:
    from datasets import Dataset

    from tasks.shakespeare.data import natural_id_partitions

    text = "a" * 80 + "bcdefghij"
    rows = {
        "character_id": ["P_A"] * 4 + ["P_B"] * 2,
        "x": [text[i : i + 80] for i in range(4)] + [text[i : i + 80] for i in range(2)],
        "y": [text[i + 80] for i in range(4)] + [text[i + 80] for i in range(2)],
    }
    parts = {c: (list(x), list(y)) for c, x, y in natural_id_partitions(Dataset.from_dict(rows))}
    assert set(parts) == {"P_A", "P_B"} and parts["P_A"][1] == list("bcde")


def test_no_directory_and_no_hub_fails_fast_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDAVG_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_roles.cache_clear()
    with pytest.raises(DataUnavailableError, match="data-dir"):
        load_roles("")


def test_a_directory_without_plays_names_itself(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match=re.escape(str(tmp_path))):
        load_directory(tmp_path)


def test_the_real_corpus_gives_about_the_papers_1146_clients() -> None:
    if not REAL_PLAYS.is_dir():
        pytest.skip(f"Gutenberg plays not found at {REAL_PLAYS} (set FEDAVG_SHARED_DATA)")
    roles = load_directory(SHARED_DATA)
    # Measured: 1222 roles with >= 2 lines in 37 plays (see README); the paper has 1146.
    assert 1100 <= len(roles) <= 1300
    plays = {r.client_id.split("_")[0] for r in roles}
    assert "tempest" in {r.client_id.rsplit("_", 1)[0] for r in roles} and len(plays) > 1
    prospero = next(r for r in roles if r.client_id == "tempest_PROSPERO")
    assert len(prospero.train) + len(prospero.test) > 500
    train_chars = sum(len(" ".join(r.train)) for r in roles)
    assert 3_000_000 <= train_chars <= 4_000_000  # paper: 3,564,579
