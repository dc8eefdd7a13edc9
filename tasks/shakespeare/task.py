"""The ``shakespeare-lstm`` task: the paper's character LSTM on one client per role.

See ``federation`` for the clients (roles, the 80/20 line split, noniid and
iid, K versus the number of roles) and ``lines`` for the examples (a line,
every next character of it predicted).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from torch import nn

from protocol.config import ExperimentConfig
from tasks.base import ClientData
from tasks.shakespeare.data import load_roles
from tasks.shakespeare.federation import ClientText, central_test_set, federate
from tasks.shakespeare.lines import VOCAB_SIZE, LineExamples
from tasks.shakespeare.model import CharLSTM


@functools.lru_cache(maxsize=4)
def clients(
    data_dir: str, partition: str, num_partitions: int, seed: int
) -> tuple[ClientText, ...]:
    """The K clients' lines; computed once per process.

    Every ClientApp process parses the corpus: the skipped non-play files are
    reported at DEBUG here, and once per run by the ServerApp (``_central_test``).
    """
    roles = load_roles(data_dir, report=logging.DEBUG)
    return tuple(federate(roles, partition, num_partitions, seed))


@functools.lru_cache(maxsize=2)
def _central_test(data_dir: str) -> LineExamples:
    return central_test_set(load_roles(data_dir))


@dataclass(frozen=True)
class ShakespeareTask:
    """Next-character prediction with the paper's 2-layer LSTM."""

    name: str = "shakespeare-lstm"
    num_classes: int = VOCAB_SIZE

    def build_model(self) -> nn.Module:
        return CharLSTM()

    def client_data(
        self, config: ExperimentConfig, partition_id: int, num_partitions: int
    ) -> ClientData:
        if not 0 <= partition_id < num_partitions:
            raise ValueError(f"partition-id {partition_id} is not in [0, {num_partitions})")
        seed = config.seeds["partition"]
        client = clients(config.data_dir, config.partition, num_partitions, seed)[partition_id]
        train, test = client.examples()
        return ClientData(train=train, test=test)

    def central_test(self, config: ExperimentConfig) -> LineExamples:
        return _central_test(config.data_dir)
