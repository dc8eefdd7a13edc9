"""The paper's MNIST and Shakespeare experiments (Tables 1 and 2) as presets, with its rounds.

Each ``Row`` is one cell of a table: the setting in the paper's symbols and the
number of rounds the paper reports to reach the target (None where the paper
shows "—", i.e. not reached, or where its table is not available to us: the
2NN half of Table 2 is the paper's Table 4, whose body we could not verify;
its FedSGD and E=1, B=10 cells are Table 1's C=0.1 cells, the same setting).

``python -m benchmarks.paper`` writes one preset TOML per row into
``benchmarks/presets/`` for ``flwr run . -c <file>`` (or
``deploy/simulation/run.sh 100 -c <file>``).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from tasks.registry import paper_targets

PRESETS_DIR = Path(__file__).parent / "presets"
C_VALUES = (0.0, 0.1, 0.2, 0.5, 1.0)

# Table 1: rounds to 97% (2NN, E=1) / 99% (CNN, E=5); None = "—".
TABLE1 = {
    ("mnist-2nn", "iid", 0): (1455, 316),
    ("mnist-2nn", "iid", 10): (1474, 87),
    ("mnist-2nn", "iid", 20): (1658, 77),
    ("mnist-2nn", "iid", 50): (None, 75),
    ("mnist-2nn", "iid", 100): (None, 70),
    ("mnist-2nn", "noniid", 0): (4278, 3275),
    ("mnist-2nn", "noniid", 10): (1796, 664),
    ("mnist-2nn", "noniid", 20): (1528, 619),
    ("mnist-2nn", "noniid", 50): (None, 443),
    ("mnist-2nn", "noniid", 100): (None, 380),
    ("mnist-cnn", "iid", 0): (387, 50),
    ("mnist-cnn", "iid", 10): (339, 18),
    ("mnist-cnn", "iid", 20): (337, 18),
    ("mnist-cnn", "iid", 50): (164, 18),
    ("mnist-cnn", "iid", 100): (246, 16),
    ("mnist-cnn", "noniid", 0): (1181, 956),
    ("mnist-cnn", "noniid", 10): (1100, 206),
    ("mnist-cnn", "noniid", 20): (978, 200),
    ("mnist-cnn", "noniid", 50): (1067, 261),
    ("mnist-cnn", "noniid", 100): (None, 97),
}

# Table 2, MNIST CNN, C=0.1, 99%: (E, B) -> (IID, non-IID); B=0 is B=inf. First row = FedSGD.
TABLE2_CNN = {
    (1, 0): (626, 483),
    (5, 0): (179, 1000),
    (1, 50): (65, 600),
    (20, 0): (234, 672),
    (1, 10): (34, 350),
    (5, 50): (29, 334),
    (20, 50): (32, 426),
    (5, 10): (20, 229),
    (20, 10): (18, 173),
}
# Table 2, Shakespeare LSTM, C=0.1, 54%: (E, B) -> (IID, non-IID). Needs K = 1222 (one client
# per role of the whole corpus: see README, Shakespeare).
TABLE2_SHAKESPEARE = {
    (1, 0): (2488, 3906),
    (1, 50): (1635, 549),
    (5, 0): (613, 597),
    (1, 10): (460, 164),
    (5, 50): (401, 152),
    (5, 10): (192, 41),
}
# Table 2 / 4, MNIST 2NN, C=0.1, 97%: the grid the paper ran; its rounds are not available.
TABLE2_2NN_GRID = (
    (1, 0),
    (10, 0),
    (1, 50),
    (20, 0),
    (1, 10),
    (10, 50),
    (20, 50),
    (10, 10),
    (20, 10),
)

# A starting eta per (model, B): the runner's grid search refines it.
DEFAULT_LR = {
    ("mnist-2nn", True): 0.1,
    ("mnist-2nn", False): 0.5,
    ("mnist-cnn", True): 0.1,
    ("mnist-cnn", False): 0.3,
    # The paper's Figure 3 rate for the LSTM (B=10); the grid search refines it.
    ("shakespeare-lstm", True): 1.47,
    ("shakespeare-lstm", False): 1.47,
}
TARGETS = paper_targets()  # from the task registry


@dataclass(frozen=True)
class Row:
    """One cell of a paper table, runnable as a preset."""

    table: str
    task: str
    partition: str
    fraction: float
    epochs: int
    batch: int  # 0 = inf
    paper_rounds: int | None

    @property
    def target(self) -> float:
        return TARGETS[self.task]

    @property
    def name(self) -> str:
        model = self.task.removeprefix("mnist-").removesuffix("-lstm")
        batch = "inf" if self.batch == 0 else str(self.batch)
        setting = (
            "fedsgd"
            if (self.epochs, self.batch) == (1, 0) and self.table == "table2"
            else (f"E{self.epochs}-B{batch}")
        )
        return f"{self.table}-{model}-{self.partition}-C{self.fraction:g}-{setting}"

    @property
    def lr(self) -> float:
        return DEFAULT_LR[(self.task, self.batch != 0)]

    @property
    def rounds(self) -> int:
        """Room to reach the target: 1.5x the paper's rounds, at least 50; 2000 if unknown."""
        if self.paper_rounds is None:
            return 2000
        return max(50, math.ceil(1.5 * self.paper_rounds))

    def run_config(self) -> dict[str, object]:
        return {
            "task": self.task,
            "partition": self.partition,
            "fraction-train": self.fraction,
            "local-epochs": self.epochs,
            "batch-size": self.batch,
            "lr": self.lr,
            "num-server-rounds": self.rounds,
            "target-accuracy": self.target,
            "stop-at-target": True,
            # Central evaluation of the CNN (and the LSTM) costs seconds; long runs evaluate
            # every 5 rounds.
            "eval-every": 5 if self.task != "mnist-2nn" and self.rounds > 200 else 1,
            # An LSTM round costs minutes on a CPU: checkpoint each one, so that a grid
            # stopped part-way resumes where it was (benchmarks/reproduce.py).
            **({"checkpoint-every": 1} if self.task == "shakespeare-lstm" else {}),
            "run-name": self.name,
        }


def table1_2nn_at_c01(partition: str, epochs: int, batch: int) -> int | None:
    """The 2NN Table 2 cells that Table 1 reports (C=0.1, E=1, B=inf: FedSGD; and B=10)."""
    if epochs != 1 or batch not in (0, 10):
        return None
    rounds_inf, rounds_10 = TABLE1[("mnist-2nn", partition, 10)]
    return rounds_inf if batch == 0 else rounds_10


def all_rows() -> list[Row]:
    rows = []
    for (task, partition, percent), (rounds_inf, rounds_10) in TABLE1.items():
        epochs = 1 if task == "mnist-2nn" else 5
        for batch, rounds in ((0, rounds_inf), (10, rounds_10)):
            rows.append(Row("table1", task, partition, percent / 100, epochs, batch, rounds))
    for partition_index, partition in enumerate(("iid", "noniid")):
        for (epochs, batch), both in TABLE2_CNN.items():
            paper_rounds = both[partition_index]
            rows.append(Row("table2", "mnist-cnn", partition, 0.1, epochs, batch, paper_rounds))
        for epochs, batch in TABLE2_2NN_GRID:
            from_table1 = table1_2nn_at_c01(partition, epochs, batch)
            rows.append(Row("table2", "mnist-2nn", partition, 0.1, epochs, batch, from_table1))
        for (epochs, batch), both in TABLE2_SHAKESPEARE.items():
            paper_rounds = both[partition_index]
            rows.append(
                Row("table2", "shakespeare-lstm", partition, 0.1, epochs, batch, paper_rounds)
            )
    return rows


def rows_by_name() -> dict[str, Row]:
    return {row.name: row for row in all_rows()}


def toml_value(value: object, quote: str = '"') -> str:
    """A run-config value as TOML (``quote`` = "'" inside ``flwr run -c "..."``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"{quote}{value}{quote}"
    return repr(value)


def to_toml(values: dict[str, object]) -> str:
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items())


def config_string(values: dict[str, object]) -> str:
    """The values as one ``flwr run -c`` argument."""
    single = "'"
    return " ".join(f"{key}={toml_value(value, single)}" for key, value in values.items())


def write_presets(directory: Path = PRESETS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for row in all_rows():
        paper = "not reported" if row.paper_rounds is None else f"{row.paper_rounds} rounds"
        header = (
            f"# {row.table.replace('table', 'Table ')}, {row.task}, {row.partition}, "
            f"C={row.fraction:g}, "
            f"E={row.epochs}, B={'inf' if row.batch == 0 else row.batch}. "
            f"Paper: {row.target:.0%} in {paper}.\n"
            "# eta is a starting point: benchmarks/reproduce.py searches a grid around it.\n"
        )
        if row.task == "shakespeare-lstm":
            header += (
                "# K = 1222 SuperNodes (one per role of the whole corpus), e.g.\n"
                "#   FEDAVG_DATA_DIR=/path/to/data deploy/simulation/run.sh "
                f"1222 -c benchmarks/presets/{row.name}.toml\n"
            )
        path = directory / f"{row.name}.toml"
        path.write_text(header + to_toml(row.run_config()))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PRESETS_DIR)
    args = parser.parse_args()
    paths = write_presets(args.out)
    print(f"wrote {len(paths)} presets to {args.out}")


if __name__ == "__main__":
    main()
