"""The Shakespeare task through the real ServerApp and ClientApp, in-process (FakeGrid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from server.config import ConfigError, parse_config
from server.results import read_metrics
from tasks.examples import sample_examples
from tasks.shakespeare.task import ShakespeareTask
from tasks.shakespeare.windows import CharWindows
from tasks.training import train_local
from tests.test_apps import run_server

# Every role repeats one line, so that a few dozen SGD steps learn it.
PHRASES = ["to be or not to be that is the question"] * 4


def write_plays(directory: Path) -> Path:
    """One play with four roles of six lines each; and a poem, skipped."""
    speeches = []
    for _ in range(6):
        for i, phrase in enumerate(PHRASES):
            speeches.append(f"ROLE{'ABCD'[i]}.\n{phrase}\n")
    folder = directory / "shakespeare-gutenberg"
    folder.mkdir(parents=True)
    (folder / "play_gut.txt").write_text("A PLAY\n\nACT I.\n\n" + "\n".join(speeches))
    (folder / "poem_gut.txt").write_text("A POEM\n\nShall I compare thee\n")
    return directory


def test_a_short_simulation_learns_beyond_the_most_common_character(tmp_path: Path) -> None:
    data = write_plays(tmp_path / "data")
    run_config = {
        "task": "shakespeare-lstm",
        "partition": "noniid",
        "data-dir": str(data),
        "results-dir": str(tmp_path / "results"),
        "run-name": "t",
        "num-server-rounds": 2,
        "fraction-train": 1.0,
        "local-epochs": 2,
        "batch-size": 10,
        "lr": 2.0,
        "eval-max-examples": 400,
    }
    # K = 2 SuperNodes: a seeded subset of 2 of the 4 roles trains.
    run_server(run_config, nodes=2)
    rows = read_metrics(tmp_path / "results" / "t")
    config = parse_config(run_config)
    test = sample_examples(ShakespeareTask().central_test(config), 400, config.seeds["partition"])
    _, labels = test.batch(np.arange(len(test)))
    majority = float(torch.bincount(labels).max()) / len(labels)
    assert rows[-1]["clients_replied"] == 2
    assert rows[-1]["test_accuracy"] > majority + 0.05, (rows, majority)


def hand_windows(line: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every character of ``line`` as a label, after its 80 predecessors (0-padded): by hand."""
    codes = list(line.encode())
    padded = [0] * 80 + codes
    inputs = torch.tensor([padded[i : i + 80] for i in range(len(codes))], dtype=torch.long)
    return inputs, torch.tensor(codes, dtype=torch.long)


def test_fedsgd_chunks_give_the_full_batch_gradient() -> None:
    """B = inf, whole or in chunks of 7, is one step w - eta * grad of the mean over 38 windows."""
    line = "so foul and fair a day I have not seen"
    examples = CharWindows.of_lines([line])
    assert len(examples) == len(line) == 38  # 5 chunks of 7 and one of 3
    torch.manual_seed(0)
    start = ShakespeareTask().build_model()
    weights = {k: v.clone() for k, v in start.state_dict().items()}
    # The oracle: plain autograd on windows cut by hand, no train_local.
    inputs, labels = hand_windows(line)
    loss = torch.nn.functional.cross_entropy(start(inputs), labels)
    grads = torch.autograd.grad(loss, list(start.parameters()))
    assert max(float(g.abs().max()) for g in grads) > 1e-3  # a step that moves the weights
    lr = 1.0
    expected = [p.detach() - lr * g for p, g in zip(start.parameters(), grads, strict=True)]
    for max_chunk in (1024, 7):
        model = ShakespeareTask().build_model()
        model.load_state_dict(weights)
        reported = train_local(
            model,
            examples,
            epochs=1,
            batch_size=0,
            lr=lr,
            rng=np.random.default_rng(0),
            max_chunk=max_chunk,
        )
        assert reported == pytest.approx(loss.item(), rel=1e-5), max_chunk
        for new, want in zip(model.parameters(), expected, strict=True):
            torch.testing.assert_close(new.detach(), want, rtol=1e-4, atol=1e-6)


def test_the_central_sample_is_seeded_fixed_and_optional() -> None:
    examples = CharWindows.of_lines(["abcdefghijklmnopqrstuvwxyz"])
    first = sample_examples(examples, 5, seed=1)
    _, labels = first.batch(np.arange(5))
    _, again = sample_examples(examples, 5, seed=1).batch(np.arange(5))
    _, other = sample_examples(examples, 5, seed=2).batch(np.arange(5))
    assert len(first) == 5 and labels.tolist() == again.tolist() != other.tolist()
    assert sample_examples(examples, 0, seed=1) is examples
    assert sample_examples(examples, 100, seed=1) is examples


def test_eval_max_examples_is_validated() -> None:
    assert parse_config({"eval-max-examples": 2000}).eval_max_examples == 2000
    with pytest.raises(ConfigError, match="'eval-max-examples' = -1"):
        parse_config({"eval-max-examples": -1})


def test_device_is_validated_and_auto_falls_back_to_the_cpu() -> None:
    from tasks.training import resolve_device

    assert parse_config({}).device == "auto"
    assert parse_config({"device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(ConfigError, match="'device' = 'tpu'"):
        parse_config({"device": "tpu"})
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
