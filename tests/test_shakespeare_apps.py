"""The Shakespeare task through the real ServerApp and ClientApp, in-process (FakeGrid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from server.config import ConfigError, parse_config
from server.results import read_metrics
from tasks.examples import sample_examples
from tasks.shakespeare.federation import Role, central_test_set
from tasks.shakespeare.lines import BOS, EOL, IGNORE, LineExamples
from tasks.shakespeare.task import ShakespeareTask
from tasks.training import evaluate, train_local
from tests.test_apps import run_server

# Every role repeats one line, so that a few dozen SGD steps learn it.
PHRASES = ["to be or not to be that is the question"] * 4


def write_plays(directory: Path) -> Path:
    """One play with four roles of 30 lines each; and a poem, skipped."""
    speeches = []
    for _ in range(30):
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
        "num-server-rounds": 3,
        "fraction-train": 1.0,
        "local-epochs": 5,
        "batch-size": 2,
        "lr": 2.0,
        "eval-max-examples": 400,
    }
    # K = 2 SuperNodes: a seeded subset of 2 of the 4 roles trains.
    run_server(run_config, nodes=2)
    rows = read_metrics(tmp_path / "results" / "t")
    config = parse_config(run_config)
    test = sample_examples(ShakespeareTask().central_test(config), 400, config.seeds["partition"])
    _, targets = test.batch(np.arange(len(test)))
    predicted = targets[targets != IGNORE]
    majority = float(torch.bincount(predicted).max()) / len(predicted)
    assert rows[-1]["clients_replied"] == 2
    # Each role repeats one phrase: three rounds nearly memorise the two that train (~0.98
    # here), far beyond predicting the most common character everywhere (0.225).
    assert rows[-1]["test_accuracy"] > majority + 0.25, (rows, majority)


class EchoModel(torch.nn.Module):
    """Predicts that the next character is the one it reads, with logit 10 for it."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # evaluate() finds the device by it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x, 256).float() * 10


def test_accuracy_is_per_predicted_character_of_the_test_lines_padding_excluded() -> None:
    """A toy role with test lines "aab" and "a", scored by hand.

    "aab" reads BOS a a b and must predict a a b EOL: the echo is right once (a after a).
    "a" reads BOS a and must predict a EOL: right never. So 1 of 6 characters. Batched
    together, "a" is padded by two steps; were padding scored (a PAD target, which the echo
    predicts from a PAD input) it would read 3 of 8, or 1 of 8 in the denominator alone.
    """
    role = Role("toy_A", train=("ab", "ba"), test=("aab", "a"))
    test = central_test_set([role])
    assert len(test) == 2 and test.num_targets() == 6
    lse = float(np.log(np.exp(10.0) + 255))  # log-sum-exp of one logit 10 and 255 zeros
    for batch_size in (1, 2):  # unpadded and padded
        loss, accuracy = evaluate(EchoModel(), test, batch_size=batch_size)
        assert accuracy == pytest.approx(1 / 6)
        assert loss == pytest.approx((6 * lse - 10) / 6)


def hand_encoded(lines: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each line as (BOS + its bytes, its bytes + EOL), unpadded: by hand, not by ``lines``."""
    return [
        (torch.tensor([[BOS, *line.encode()]]), torch.tensor([*line.encode(), EOL]))
        for line in lines
    ]


def test_fedsgd_is_one_step_on_the_mean_loss_over_every_predicted_character() -> None:
    """B = inf, whole or in chunks of one line, is w - eta * grad of the mean over 52 characters.

    The lines differ in length, so a batch pads the short ones: the oracle runs each line
    alone, unpadded, and averages over characters, not over lines.
    """
    lines = ["so foul and fair a day", "I have not seen", "fair is foul"]
    examples = LineExamples.of_lines(lines)
    assert len(examples) == 3 and examples.num_targets() == 23 + 16 + 13
    torch.manual_seed(0)
    start = ShakespeareTask().build_model()
    weights = {k: v.clone() for k, v in start.state_dict().items()}
    total = sum(
        torch.nn.functional.cross_entropy(start(x)[0], y, reduction="sum")
        for x, y in hand_encoded(lines)
    )
    loss = total / 52
    grads = torch.autograd.grad(loss, list(start.parameters()))
    assert max(float(g.abs().max()) for g in grads) > 1e-3  # a step that moves the weights
    lr = 1.0
    expected = [p.detach() - lr * g for p, g in zip(start.parameters(), grads, strict=True)]
    for max_chunk in (1024, 1):
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
    examples = LineExamples.of_lines(list("abcdefghijklmnopqrstuvwxyz"))
    first = sample_examples(examples, 5, seed=1)  # 5 of the 26 lines
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
