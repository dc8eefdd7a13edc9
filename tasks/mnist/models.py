"""The paper's MNIST models (section 3).

- 2NN: a multilayer perceptron with two hidden layers of 200 units and ReLU,
  199,210 parameters.
- CNN: two 5x5 convolutions (32 then 64 channels), each followed by 2x2 max
  pooling, a fully connected layer of 512 units with ReLU and a softmax output,
  1,663,370 parameters. The paper does not state the padding; "same" padding
  (28 -> 14 -> 7, so 7*7*64 = 3136 inputs to the FC layer) is the only choice
  that gives its parameter count with a plain conv/pool stack.

The softmax is folded into the cross-entropy loss: the models return logits.
"""

from __future__ import annotations

import torch
from torch import nn

MNIST_2NN_PARAMETERS = 199_210
MNIST_CNN_PARAMETERS = 1_663_370


class Mnist2NN(nn.Module):
    """784-200-200-10 multilayer perceptron with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, 200),
            nn.ReLU(),
            nn.Linear(200, 200),
            nn.ReLU(),
            nn.Linear(200, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # type: ignore[no-any-return]


class MnistCNN(nn.Module):
    """conv5x5(32) - pool - conv5x5(64) - pool - FC 512 - FC 10, "same" padding."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.classifier(self.features(x))  # type: ignore[no-any-return]


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
