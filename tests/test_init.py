"""w_0's draw: ``init = "glorot"`` is Glorot-uniform weights and zero biases (TF's 2016 default)."""

from __future__ import annotations

import math

import pytest
import torch

from protocol.config import parse_config
from server.app import initial_model
from tasks.init import initialise
from tasks.registry import get_task


def test_glorot_draws_weights_in_the_glorot_bound_and_zeroes_biases() -> None:
    torch.manual_seed(0)
    model = initialise(get_task("mnist-2nn").build_model(), "glorot")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in layers] == [(200, 784), (200, 200), (10, 200)]
    for layer in layers:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        weight = layer.weight.detach()
        assert float(weight.abs().max()) <= bound
        # Uniform on [-a, a]: variance a^2 / 3; over 2,000+ draws within 10%.
        assert float(weight.var()) == pytest.approx(bound**2 / 3, rel=0.1)
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_the_cnn_convolutions_are_redrawn_too_and_pytorch_leaves_the_model_alone() -> None:
    torch.manual_seed(1)
    built = get_task("mnist-cnn").build_model()
    before = {k: v.clone() for k, v in built.state_dict().items()}
    initialise(built, "pytorch")
    assert all(torch.equal(before[k], v) for k, v in built.state_dict().items())
    initialise(built, "glorot")
    convs = [m for m in built.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 and all(float(c.bias.abs().max()) == 0.0 for c in convs)


def test_the_server_draws_w0_by_the_config_and_the_model_seed() -> None:
    glorot = initial_model(parse_config({"init": "glorot", "model-seed": 3}))
    again = initial_model(parse_config({"init": "glorot", "model-seed": 3}))
    default = initial_model(parse_config({"model-seed": 3}))
    first = next(iter(glorot.state_dict()))
    assert torch.equal(glorot.state_dict()[first], again.state_dict()[first])
    assert not torch.equal(glorot.state_dict()[first], default.state_dict()[first])
    assert parse_config({"init": "glorot"}).describe() == "mnist-2nn_iid_glorot_C0.1_E1_B10_lr0.1"


def test_an_unknown_scheme_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: pytorch, glorot"):
        initialise(torch.nn.Linear(2, 2), "kaiming")
