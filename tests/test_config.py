import pytest

from server.config import ConfigError, ExperimentConfig, parse_config
from tasks.registry import target_accuracy


def test_defaults_are_the_papers_2nn_iid_setting() -> None:
    config = parse_config({})
    assert (config.task, config.partition) == ("mnist-2nn", "iid")
    assert (config.fraction_train, config.local_epochs, config.batch_size) == (0.1, 1, 10)
    assert target_accuracy(config) == 0.97


def test_pyproject_defaults_parse(tmp_path: object) -> None:
    import tomllib
    from pathlib import Path

    from flwr.common.config import flatten_dict

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    # flwr flattens nested tables ([tool.flwr.app.config.wandb]) into dotted keys.
    config = parse_config(flatten_dict(pyproject["tool"]["flwr"]["app"]["config"]))
    assert config == ExperimentConfig(num_server_rounds=config.num_server_rounds)


def test_keys_are_hyphenated_and_coerced() -> None:
    config = parse_config(
        {"task": "mnist-cnn", "fraction-train": 1, "batch-size": 0, "lr": 1, "local-epochs": 5.0}
    )
    assert config.fraction_train == 1.0 and isinstance(config.fraction_train, float)
    assert config.batch_size == 0 and config.local_epochs == 5
    assert target_accuracy(config) == 0.99
    assert config.describe() == "mnist-cnn_iid_C1_E5_Binf_lr1"
    unit = parse_config({"input-scaling": "unit"})
    assert unit.describe() == "mnist-2nn_iid_unit_C0.1_E1_B10_lr0.1"


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("task", "mnist-rnn", "one of mnist-2nn"),
        ("partition", "dirichlet", "one of iid, noniid"),
        ("input-scaling", "minmax", "standardised (mean 0.1307, sd 0.3081) or unit"),
        ("fraction-train", 1.5, "C, a number in [0, 1]"),
        ("local-epochs", 0, "E, an integer >= 1"),
        ("batch-size", -1, "B, an integer >= 1, or 0"),
        ("batch-size", 2.5, "a int"),
        ("lr", 0, "eta, a number > 0"),
        ("lr", "fast", "a float"),
        ("lr-decay", 1.5, "(0, 1]"),
        ("stop-at-target", 1, "a bool"),
        ("run-name", "a/b", "without '/'"),
        ("lerning-rate", 0.1, "a known key"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(
    key: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({key: value})
    message = str(caught.value)
    assert repr(key) in message and repr(value) in message and allowed in message


def test_namespaced_add_on_keys_are_left_to_the_add_on() -> None:
    assert parse_config({"wandb.project": "x"}) == ExperimentConfig()


def test_seeds_are_separate_derived_and_overridable() -> None:
    seeds = parse_config({"seed": 1}).seeds
    assert len(set(seeds.values())) == 3
    assert parse_config({"seed": 1}).seeds == seeds
    assert parse_config({"seed": 2}).seeds != seeds
    overridden = parse_config({"seed": 1, "partition-seed": 5}).seeds
    assert overridden == {**seeds, "partition": 5}


def test_config_is_frozen() -> None:
    config = parse_config({})
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]
