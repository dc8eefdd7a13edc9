"""``bench-wide``: a ~50 MB model on synthetic data, for server benchmarks only (not the paper's).

``benchmarks/server_memory.py`` runs the ServerApp through a SuperLink with
hundreds of clients of this model: large enough that the server's memory is
dominated by copies of the model, cheap enough per client (two synthetic
examples, one SGD step through the real ClientApp) for a small machine. Its
target accuracy is a placeholder; no result of it means anything about FedAvg.
"""

from __future__ import annotations

from tasks.base import Task
from tasks.registry import register


def _load() -> Task:
    from tasks.bench.task import WideBenchTask

    return WideBenchTask()


register("bench-wide", target_accuracy=1.0, load=_load)
