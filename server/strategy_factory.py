"""Which strategy a run uses: the run config's ``strategy`` and ``dp-*`` keys.

``fedavg`` is the paper's FederatedAveraging (``strategies.fedavg``), the
default. The others are Flower's built-in strategies on the same tasks,
seeds and results files, for comparison:

- ``flower-fedavg``: Flower's ``FedAvg``, the same weighted average as ours
  but with Flower's conventions (sampling by Python's ``random``, here seeded
  with the sampling seed, over node ids, which differ from run to run; a
  malformed reply fails the run);
- ``fedprox``: Flower's ``FedProx``; our ClientApp adds the proximal term
  mu/2 ||w - w_t||^2 to its local objective (``proximal-mu``);
- ``fedavgm``: server momentum on the averaged update (``server-lr``,
  ``server-momentum``);
- ``fedadam``: Adam on the server (``server-lr`` is its eta; eta_l is ``lr``).

C is each one's ``fraction_train``, with at least one client (the paper's
m = max(C * K, 1)); federated evaluation follows ``fraction-evaluate``.

``dp-clipping-norm`` S > 0 wraps the chosen strategy in Flower's
``DifferentialPrivacyServerSideFixedClipping`` (DP-FedAvg, McMahan et al.
2018): each update w^k - w_t is clipped to norm S, and Gaussian noise of std
z S / m (z = ``dp-noise-multiplier``) is added to the average. Privacy is not
accounted here.
"""

from __future__ import annotations

import random
from typing import TypedDict

from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedProx,
    Strategy,
)

from protocol.config import ExperimentConfig
from strategies.fedavg import FederatedAveraging
from strategies.sampling import clients_per_round


class _Sampling(TypedDict):
    """The constructor keys every Flower strategy here shares."""

    fraction_train: float
    fraction_evaluate: float
    min_train_nodes: int
    min_evaluate_nodes: int
    min_available_nodes: int


# Flower's own defaults for server-lr = 0.
_DEFAULT_SERVER_LR = {"fedavgm": 1.0, "fedadam": 0.1}


def paper_fedavg(config: ExperimentConfig) -> FederatedAveraging:
    """The paper's FederatedAveraging with the config's C, E, B and eta."""
    return FederatedAveraging(
        fraction_train=config.fraction_train,
        local_epochs=config.local_epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        lr_decay=config.lr_decay,
        sampling_seed=config.seeds["sampling"],
        min_nodes=config.min_nodes,
        node_wait_seconds=config.node_wait_seconds,
        fraction_evaluate=config.fraction_evaluate,
        max_update_norm=config.max_update_norm or None,
        max_examples=config.max_num_examples or None,
        min_replies=config.min_replies,
    )


def flower_strategy(config: ExperimentConfig) -> FedAvg:
    """One of Flower's built-in strategies, configured like ours (see the module)."""
    # Flower samples with the global ``random``: seeding it makes a run repeatable.
    random.seed(config.seeds["sampling"])
    evaluate = config.fraction_evaluate > 0
    common = _Sampling(
        fraction_train=config.fraction_train,
        fraction_evaluate=config.fraction_evaluate,
        min_train_nodes=1,
        min_evaluate_nodes=1 if evaluate else 0,
        min_available_nodes=config.min_nodes,
    )
    server_lr = config.server_lr or _DEFAULT_SERVER_LR.get(config.strategy, 1.0)
    if config.strategy == "flower-fedavg":
        return FedAvg(**common)
    if config.strategy == "fedprox":
        return FedProx(**common, proximal_mu=config.proximal_mu)
    if config.strategy == "fedavgm":
        return FedAvgM(
            **common, server_learning_rate=server_lr, server_momentum=config.server_momentum
        )
    if config.strategy == "fedadam":
        return FedAdam(**common, eta=server_lr, eta_l=config.lr)
    raise ValueError(f"unknown strategy {config.strategy!r}")


def build_strategy(config: ExperimentConfig, *, num_clients: int) -> Strategy:
    """The run's strategy: ``strategy``, wrapped in DP clipping when ``dp-clipping-norm`` > 0."""
    strategy: Strategy = (
        paper_fedavg(config) if config.strategy == "fedavg" else flower_strategy(config)
    )
    if config.dp_clipping_norm > 0:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy,
            noise_multiplier=config.dp_noise_multiplier,
            clipping_norm=config.dp_clipping_norm,
            num_sampled_clients=clients_per_round(config.fraction_train, num_clients),
        )
    return strategy
