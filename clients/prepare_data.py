"""Write each client's partition into its own directory, for deployed SuperNodes.

    python -m clients.prepare_data --task mnist-2nn --partition noniid \\
        --num-partitions 100 --data-dir /path/to/data --out /srv/fedavg-data

writes ``<out>/mnist-noniid-100/client-000/`` ... ``client-099/`` (see
``clients.node_data``) with the same seeded partition functions as
simulation, so a SuperNode started with
``--node-config "data-path='<out>/mnist-noniid-100/client-007'"`` trains on
exactly the examples of partition 7 in simulation. ``--seed`` and
``--partition-seed`` mean what they mean in the run config and must match
the run's. Prints one line per client (examples, labels) and the total, to
check against the paper (600 training examples per client for MNIST, K=100).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clients.node_data import node_task, partition_dir, write_node_data
from protocol.config import ConfigError
from tasks.registry import parse_run_config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clients.prepare_data", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--task", default="mnist-2nn", help="run config task (default: mnist-2nn)")
    parser.add_argument("--partition", default="iid", help="iid or noniid (default: iid)")
    parser.add_argument("--num-partitions", type=int, required=True, help="K")
    parser.add_argument(
        "--clients", type=int, default=None, help="write only partitions 0..N-1 (default: all K)"
    )
    parser.add_argument("--seed", type=int, default=0, help="run config seed (default: 0)")
    parser.add_argument(
        "--partition-seed", type=int, default=-1, help="-1 = derived from --seed (default)"
    )
    parser.add_argument(
        "--data-dir", default="", help="source data (default: $FEDAVG_DATA_DIR, then the hub)"
    )
    parser.add_argument("--out", type=Path, required=True, help="root directory to write into")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = parse_run_config(
            {
                "task": args.task,
                "partition": args.partition,
                "seed": args.seed,
                "partition-seed": args.partition_seed,
                "data-dir": args.data_dir,
            }
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    num_partitions = args.num_partitions
    count = num_partitions if args.clients is None else args.clients
    if not 1 <= count <= num_partitions:
        print(f"error: --clients must be in [1, {num_partitions}], got {count}", file=sys.stderr)
        return 2
    dataset = node_task(config).dataset
    total = 0
    for pid in range(count):
        directory = partition_dir(args.out, dataset, config.partition, num_partitions, pid)
        manifest = write_node_data(directory, config, pid, num_partitions)
        with np.load(directory / "data.npz") as arrays:
            labels = np.unique(arrays["train_labels"]).tolist()
        total += manifest.num_train
        print(f"{directory}: {manifest.num_train} train, {manifest.num_test} test, labels {labels}")
    seed = config.seeds["partition"]
    print(
        f"{count} of K={num_partitions} clients, {total} training examples, partition seed {seed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
