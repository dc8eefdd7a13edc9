"""ClientUpdate (Algorithm 1) as ``tasks.training.train_local`` runs it, checked by hand.

Plain SGD without momentum or weight decay, E * ceil(n_k / B) steps per round
with a fresh order each epoch, and B = inf (``batch_size=0``) as one
full-batch step per epoch. A linear softmax model keeps the gradient
computable in numpy: for logits z = x W^T + b and the mean cross-entropy over
a batch of size n, dL/dW = (softmax(z) - onehot(y))^T x / n and dL/db is the
column mean of softmax(z) - onehot(y).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from torch import nn

from tasks.examples import TensorExamples
from tasks.training import train_local

CLASSES, FEATURES = 3, 4


class RecordingExamples(TensorExamples):
    """TensorExamples that remember the index batch of every ``batch`` call."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(inputs, labels)
        self.calls: list[NDArray[np.int64]] = []

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append(np.asarray(indices).copy())
        return super().batch(indices)


def examples(n: int, seed: int = 0) -> RecordingExamples:
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(rng.normal(size=(n, FEATURES)).astype(np.float64))
    labels = torch.from_numpy(rng.integers(0, CLASSES, size=n).astype(np.int64))
    return RecordingExamples(inputs, labels)


def linear_model(seed: int = 1) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(FEATURES, CLASSES).double()


def sgd_step_by_hand(
    w: NDArray[np.float64], b: NDArray[np.float64], x: NDArray, y: NDArray, lr: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    z = x @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0  # softmax - onehot
    return w - lr * (p.T @ x) / len(y), b - lr * p.mean(axis=0)


def test_several_steps_are_plain_sgd_without_momentum() -> None:
    """Three steps against the hand-computed w <- w - eta * grad l(w; b).

    One step cannot tell momentum apart (its first step is plain SGD); from the
    second on, momentum mu would add mu * eta * g_{t-1}.
    """
    data = examples(12)
    model = linear_model()
    w, b = (model.weight.detach().numpy().copy(), model.bias.detach().numpy().copy())
    train_local(model, data, epochs=1, batch_size=4, lr=0.3, rng=np.random.default_rng(5))
    assert len(data.calls) == 3
    x_all, y_all = data.inputs.numpy(), data.labels.numpy()
    for batch in data.calls:
        w, b = sgd_step_by_hand(w, b, x_all[batch], y_all[batch], 0.3)
    np.testing.assert_allclose(model.weight.detach().numpy(), w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.detach().numpy(), b, rtol=1e-10, atol=1e-12)

    # The check can fail: SGD with momentum over the same batches ends elsewhere.
    momentum = linear_model()
    optimizer = torch.optim.SGD(momentum.parameters(), lr=0.3, momentum=0.9)
    for batch in data.calls:
        optimizer.zero_grad()
        x, y = data.inputs[batch], data.labels[batch]
        nn.functional.cross_entropy(momentum(x), y).backward()
        optimizer.step()
    assert not np.allclose(momentum.weight.detach().numpy(), w, rtol=1e-6)


@pytest.mark.parametrize(("n", "batch_size", "epochs"), [(23, 5, 3), (20, 5, 2), (7, 10, 2)])
def test_e_times_ceil_n_over_b_steps_with_a_fresh_order_each_epoch(
    n: int, batch_size: int, epochs: int
) -> None:
    data = examples(n)
    train_local(
        linear_model(),
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=0.1,
        rng=np.random.default_rng(0),
    )
    steps_per_epoch = math.ceil(n / batch_size)
    assert len(data.calls) == epochs * steps_per_epoch
    orders = []
    for e in range(epochs):
        batches = data.calls[e * steps_per_epoch : (e + 1) * steps_per_epoch]
        assert [len(x) for x in batches[:-1]] == [batch_size] * (steps_per_epoch - 1)
        order = np.concatenate(batches)
        assert sorted(order.tolist()) == list(range(n))  # every example once per epoch
        orders.append(order.tolist())
    assert all(a != b for i, a in enumerate(orders) for b in orders[i + 1 :])


def test_b_zero_is_one_full_batch_step_per_epoch() -> None:
    data = examples(9)
    model = linear_model()
    w, b = (model.weight.detach().numpy().copy(), model.bias.detach().numpy().copy())
    train_local(model, data, epochs=2, batch_size=0, lr=0.5, rng=np.random.default_rng(0))
    assert [sorted(c.tolist()) for c in data.calls] == [list(range(9))] * 2
    x, y = data.inputs.numpy(), data.labels.numpy()
    for _ in range(2):
        w, b = sgd_step_by_hand(w, b, x, y, 0.5)
    np.testing.assert_allclose(model.weight.detach().numpy(), w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.detach().numpy(), b, rtol=1e-10, atol=1e-12)
