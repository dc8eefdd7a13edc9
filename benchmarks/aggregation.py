"""Time and peak memory of aggregating m MNIST-CNN updates, m = 10, 100, 1000.

    python -m benchmarks.aggregation [--sizes 10,100,1000]

Replies are produced one at a time by a generator and fed to
``FederatedAveraging.aggregate_train``, which folds each into a float64
accumulator as it arrives (``strategies.aggregation.WeightedMean``), so peak
memory should not grow with m. For comparison, ``hold-all`` keeps every
update and averages them with ``np.average`` (the naive way; skipped above
m=100, where it would need m x 6.6 MB).

Peak memory is measured with ``tracemalloc`` (numpy reports its buffers to
it) above what was allocated before aggregation. The time per update is set
against a measured copy bandwidth of this machine: folding one update in
moves ~(4 + 8 + 8 + 8) bytes per parameter (read the float32 update, write
and read the scratch buffer, update the float64 sum), plus Flower's
deserialisation of the reply's arrays.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from strategies.records import to_named_arrays
from strategies.replies import TrainFold
from tasks.mnist.models import MnistCNN

BYTES_PER_PARAMETER = 4 + 8 + 8 + 8


def set_task_identity() -> None:
    """Flower's Message constructor needs these outside a running app."""
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1


def copy_bandwidth(size_bytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Bytes per second of a large numpy copy (read + write counted)."""
    source = np.ones(size_bytes // 8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return 2 * size_bytes / best


def replies(template: dict[str, np.ndarray], m: int) -> Iterator[Message]:
    """m replies from m distinct nodes, each built only when the strategy asks for it."""
    rng = np.random.default_rng(0)
    for node in range(1, m + 1):
        instruction = Message(RecordDict(), dst_node_id=node, message_type="train")
        arrays = {k: (v + rng.standard_normal(1).astype(v.dtype)) for k, v in template.items()}
        record = ArrayRecord({k: Array(v) for k, v in arrays.items()})
        metrics = MetricRecord({"num-examples": 600, "train-loss": 0.1})
        yield Message(RecordDict({"arrays": record, "metrics": metrics}), reply_to=instruction)


def measure(m: int, mode: str) -> tuple[float, float]:
    """Return (seconds, peak MiB) of aggregating m updates."""
    set_task_identity()
    template = {k: v.numpy() for k, v in MnistCNN().state_dict().items()}
    # The strategy's fold (strategies.replies), validating each reply against w_t as
    # aggregate_train does, without a grid to sample from.
    fold = TrainFold({k: v.copy() for k, v in template.items()})
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    if mode == "streaming":
        for reply in replies(template, m):
            fold.add(reply, reply.metadata.src_node_id)
            del reply
        if fold.valid != m:
            raise RuntimeError(f"{m - fold.valid} of {m} replies rejected: {fold.rejections[:1]}")
        fold.result()
    else:
        held = [to_named_arrays(r.content.array_records["arrays"]) for r in replies(template, m)]
        {k: np.average(np.stack([u[k] for u in held]), axis=0) for k in template}
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return seconds, peak / 2**20


def generation_seconds(m: int) -> float:
    """Time to build the m replies alone (subtracted from the aggregation time)."""
    set_task_identity()
    template = {k: v.numpy() for k, v in MnistCNN().state_dict().items()}
    started = time.perf_counter()
    for _ in replies(template, m):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    torch.set_num_threads(1)
    parameters = sum(v.numel() for v in MnistCNN().state_dict().values())
    bandwidth = copy_bandwidth()
    floor = parameters * BYTES_PER_PARAMETER / bandwidth
    print(f"CNN: {parameters:,} parameters ({parameters * 4 / 2**20:.1f} MiB float32)")
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s -> memory floor {floor * 1e3:.2f} ms/update")
    print("| m | mode | s total | ms/update (net of building replies) | x floor | peak MiB |")
    print("|---|---|---|---|---|---|")
    for m in (int(v) for v in args.sizes.split(",")):
        build = generation_seconds(m)
        for mode in ("streaming", "hold-all"):
            if mode == "hold-all" and m > 100:
                continue
            seconds, peak = measure(m, mode)
            per_update = max(seconds - build, 0.0) / m
            print(
                f"| {m} | {mode} | {seconds:.2f} | {per_update * 1e3:.2f} | "
                f"{per_update / floor:.1f} | {peak:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
