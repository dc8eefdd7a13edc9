"""How w_0 is drawn: PyTorch's default initialisation, or Glorot-uniform with zero biases.

The paper does not say how its models were initialised. Its experiments ran on TensorFlow in
2016, whose dense and convolutional layers drew weights Glorot-uniform (Glorot & Bengio 2010:
U(-a, a), a = sqrt(6 / (fan_in + fan_out))) and set biases to zero. PyTorch's ``nn.Linear`` and
``nn.Conv2d`` draw weights and biases Kaiming-uniform with a = sqrt(5), which for these layers
is U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The run config's ``init`` picks one (an ablation of
docs/reproduction.md); recurrent layers keep PyTorch's initialisation either way.
"""

from __future__ import annotations

from torch import nn

from protocol.config import INIT_SCHEMES


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """Re-draw ``model``'s dense and convolutional layers by ``scheme``, in place; returns it.

    ``pytorch`` leaves the model as built. The draws come from torch's global generator, so
    seed it first (the server seeds it with the model seed).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; known: {', '.join(INIT_SCHEMES)}")
    if scheme == "glorot":
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model
