"""Local training and evaluation loops, shared by clients and the server.

ClientUpdate of Algorithm 1: for each of E local epochs, split the local data
into batches of size B (in a fresh random order each epoch) and take one
plain SGD step w <- w - eta * grad l(w; b) per batch. No momentum, no weight
decay. B = inf (``batch_size=0``) makes the whole local data set one batch.

The loss of a batch is the mean cross-entropy over its predicted targets: one
per example for MNIST, one per predicted character for Shakespeare (its model
returns ``[batch, T, classes]`` logits and its padding targets are
``IGNORE_INDEX``, neither trained on nor scored). Accuracy is likewise correct
predictions over all predicted targets.

A batch larger than ``max_chunk`` examples (FedSGD on a large role) is pushed
through the model in chunks whose summed losses are divided by the whole
batch's target count before the one step: the same gradient of the mean loss,
in bounded memory.

FedProx (Li et al. 2020; ``strategy = "fedprox"``, not the paper's) adds
mu/2 ||w - w_t||^2 to each step's objective, w_t the weights the client
started from; its gradient mu (w - w_t) joins the batch's before the step.
mu = 0 is plain FedAvg. The reported loss is the data loss, without the term.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tasks.examples import ExampleSet


def resolve_device(name: str) -> torch.device:
    """The run config's ``device``: ``auto`` is the GPU when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


IGNORE_INDEX = -100  # a padding target: torch's cross_entropy default ignore_index


def _flat(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., classes]`` logits and ``[...]`` labels as ``[N, classes]`` and ``[N]``."""
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)


def train_local(
    model: nn.Module,
    examples: ExampleSet,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
    max_chunk: int = 1024,
    proximal_mu: float = 0.0,
) -> float:
    """Run E epochs of plain SGD; return the mean training loss over all steps' targets."""
    n = len(examples)
    if n == 0:
        raise ValueError("no training examples")
    step = n if batch_size == 0 else batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    model.train()
    device = next(model.parameters()).device  # batches go where the model is
    total_loss, seen = 0.0, 0
    params = [p for p in model.parameters() if p.requires_grad]
    start_weights = [p.detach().clone() for p in params] if proximal_mu else []
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, step):
            batch = order[start : start + step]
            chunks = [
                examples.batch(batch[chunk_start : chunk_start + max_chunk])
                for chunk_start in range(0, len(batch), max_chunk)
            ]
            targets = sum(int((labels != IGNORE_INDEX).sum()) for _, labels in chunks)
            if targets == 0:
                continue  # nothing to predict: no step
            optimizer.zero_grad(set_to_none=True)
            for inputs, labels in chunks:
                logits, flat_labels = _flat(model(inputs.to(device)), labels.to(device))
                loss = nn.functional.cross_entropy(
                    logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum"
                )
                (loss / targets).backward()
                total_loss += float(loss.detach())
            if proximal_mu:
                for p, p0 in zip(params, start_weights, strict=True):
                    if p.grad is not None:
                        p.grad.add_(p.detach() - p0, alpha=proximal_mu)
            optimizer.step()
            seen += targets
    if seen == 0:
        raise ValueError("no training targets")
    return total_loss / seen


@torch.no_grad()
def evaluate(
    model: nn.Module, examples: ExampleSet, *, batch_size: int = 200
) -> tuple[float, float]:
    """Return (mean cross-entropy loss, accuracy) of ``model`` over the targets of ``examples``.

    Both are per predicted target (per character for Shakespeare), padding excluded.
    """
    n = len(examples)
    if n == 0:
        raise ValueError("no evaluation examples")
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct, targets = 0.0, 0, 0
    for start in range(0, n, batch_size):
        inputs, labels = examples.batch(np.arange(start, min(start + batch_size, n)))
        logits, flat_labels = _flat(model(inputs.to(device)), labels.to(device))
        scored = flat_labels != IGNORE_INDEX
        loss_sum += float(
            nn.functional.cross_entropy(
                logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum"
            )
        )
        correct += int(((logits.argmax(dim=1) == flat_labels) & scored).sum())
        targets += int(scored.sum())
    if targets == 0:
        raise ValueError("no evaluation targets")
    return loss_sum / targets, correct / targets
