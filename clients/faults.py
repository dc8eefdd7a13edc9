"""Injected client faults, for fault tests and robustness experiments.

``inject-failure-rate`` makes a sampled client fail its round (the reply is
an error, as when a phone drops out); ``inject-delay-rate`` and
``inject-delay-seconds`` make it a straggler. Which clients fail is a function
of (seed, round, partition), so a faulty run is as reproducible as a clean
one. Both are off by default; nothing else in the client depends on them.
"""

from __future__ import annotations

import time

import numpy as np

from protocol.config import ExperimentConfig


class InjectedFailure(RuntimeError):
    """A failure the run config asked for."""


def maybe_inject_fault(config: ExperimentConfig, server_round: int, partition_id: int) -> None:
    """Raise or sleep as the config's injection rates say, for this client and round."""
    if not (config.inject_failure_rate or config.inject_delay_rate):
        return
    draws = np.random.default_rng([config.seed, server_round, partition_id, 0xFA17]).random(2)
    if draws[0] < config.inject_failure_rate:
        raise InjectedFailure(
            f"injected failure (inject-failure-rate={config.inject_failure_rate}) "
            f"in round {server_round} on partition {partition_id}"
        )
    if draws[1] < config.inject_delay_rate:
        time.sleep(config.inject_delay_seconds)
