"""Node-local data: prepared directories hold exactly the simulation's partitions,
bad ones fail the node's reply with the path named, and sampling follows
partition order so that node ids do not change which clients train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from flwr.app import Context, Message, RecordDict

from clients import prepare_data
from clients.data import node_client_data
from clients.node_data import NodeDataError, load_node_data
from server import app as server_app
from server.config import parse_config
from server.results import read_metrics
from strategies.fedavg import FederatedAveraging
from tasks.mnist.task import MnistTask
from tests.fakes import FakeGrid, set_task_identity
from tests.test_apps import base_config, dispatch

set_task_identity()


def prepare(data: Path, out: Path, partition: str, k: int, *extra: str) -> Path:
    argv = ["--partition", partition, "--num-partitions", str(k), "--data-dir", str(data)]
    assert prepare_data.main([*argv, "--out", str(out), *extra]) == 0
    return out / f"mnist-{partition}-{k}"


@pytest.mark.parametrize("partition", ["iid", "noniid"])
def test_prepared_directories_hold_exactly_the_simulation_partitions(
    synthetic_mnist: Path, tmp_path: Path, partition: str
) -> None:
    root = prepare(synthetic_mnist, tmp_path / "out", partition, 6, "--seed", "3")
    config = parse_config({"data-dir": str(synthetic_mnist), "partition": partition, "seed": 3})
    seen: list[torch.Tensor] = []
    for pid in range(6):
        node, manifest = load_node_data(root / f"client-{pid:03d}", config)
        sim = MnistTask("mnist-2nn").client_data(config, pid, 6)
        assert manifest.partition_id == pid and manifest.num_partitions == 6
        assert torch.equal(node.train.inputs, sim.train.inputs)  # type: ignore[attr-defined]
        assert torch.equal(node.train.labels, sim.train.labels)  # type: ignore[attr-defined]
        assert torch.equal(node.test.labels, sim.test.labels)  # type: ignore[attr-defined]
        seen.append(node.train.labels)  # type: ignore[attr-defined]
    assert sum(len(s) for s in seen) == 600  # every training example, once


@pytest.mark.parametrize("scaling", ["standardised", "unit"])
def test_a_node_with_a_data_path_trains_like_its_partition_in_simulation(
    synthetic_mnist: Path, tmp_path: Path, scaling: str
) -> None:
    root = prepare(synthetic_mnist, tmp_path / "out", "iid", 4)
    config = parse_config({"data-dir": str(synthetic_mnist), "input-scaling": scaling})
    by_path, pid_a = node_client_data(config, {"data-path": str(root / "client-002")})
    by_id, pid_b = node_client_data(config, {"partition-id": 2, "num-partitions": 4})
    assert pid_a == pid_b == 2
    assert torch.equal(by_path.train.inputs, by_id.train.inputs)  # type: ignore[attr-defined]
    inputs = by_path.train.inputs  # type: ignore[attr-defined]
    if scaling == "unit":  # the raw pixels / 255: the brightest is exactly 1
        assert float(inputs.min()) >= 0.0 and float(inputs.max()) == 1.0
    else:  # (p / 255 - 0.1307) / 0.3081: a black pixel is -0.4242
        assert float(inputs.min()) == pytest.approx(-0.1307 / 0.3081, abs=1e-6)


def test_a_node_loads_its_data_once_until_the_file_is_rewritten(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    """The warm executor loads a node's data once for all its tasks (``warm_executor_prepare``);
    a data file rewritten in place (re-prepared, or damaged) must be loaded and checked again."""
    root = prepare(synthetic_mnist, tmp_path / "out", "iid", 4)
    path = str(root / "client-001")
    config = parse_config({"data-dir": str(synthetic_mnist)})
    first, _ = node_client_data(config, {"data-path": path})
    again, _ = node_client_data(config, {"data-path": path})
    assert again is first  # cached: not hashed, read and scaled again
    arrays = Path(path) / "data.npz"
    arrays.write_bytes(arrays.read_bytes()[:-100])  # same directory, damaged file
    with pytest.raises(NodeDataError, match="does not match its checksum"):
        node_client_data(config, {"data-path": path})


def test_missing_corrupt_or_mismatched_data_paths_fail_naming_the_path(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    root = prepare(synthetic_mnist, tmp_path / "out", "iid", 2)
    config = parse_config({"data-dir": str(synthetic_mnist)})
    missing = tmp_path / "nowhere"
    with pytest.raises(NodeDataError, match=f"data-path {missing}: no manifest.json"):
        load_node_data(missing, config)
    other_seed = parse_config({"data-dir": str(synthetic_mnist), "seed": 1})
    with pytest.raises(NodeDataError, match="the run needs"):
        load_node_data(root / "client-000", other_seed)
    damaged = root / "client-001" / "data.npz"
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    with pytest.raises(NodeDataError, match=f"data-path {root / 'client-001'}: .*checksum"):
        load_node_data(root / "client-001", config)


def run_on(grid: FakeGrid, run_config: dict[str, Any]) -> list[dict[str, Any]]:
    context = Context(
        run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config=run_config
    )
    server_app.main(grid, context)
    return read_metrics(Path(run_config["results-dir"]) / "t")


def test_a_node_with_a_bad_data_path_is_rejected_and_counted(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    root = prepare(synthetic_mnist, tmp_path / "out", "iid", 3)
    run_config = base_config(synthetic_mnist, tmp_path / "results", **{"num-server-rounds": 1})
    grid = FakeGrid(3, dispatch, run_config)
    for pid, node in enumerate(grid.node_ids):
        grid.contexts[node].node_config = {"data-path": str(root / f"client-{pid:03d}")}
    grid.contexts[grid.node_ids[1]].node_config = {"data-path": str(tmp_path / "gone")}
    rows = run_on(grid, run_config)
    assert rows[1]["clients_replied"] == 3 and rows[1]["clients_rejected"] == 1
    assert str(tmp_path / "gone") in rows[1]["rejections"][0]
    assert rows[1]["model_updated"]


def renumbered(grid: FakeGrid, new_ids: list[int]) -> FakeGrid:
    """The same nodes (partition i keeps its data) under other node ids, as another engine gives."""
    contexts = [grid.contexts[n] for n in grid.node_ids]
    grid.node_ids = new_ids
    grid.contexts = {n: c for n, c in zip(new_ids, contexts, strict=True)}
    return grid


def test_other_node_ids_sample_the_same_partitions_and_give_the_same_curve(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    curves = []
    for name, ids in (("a", [11, 12, 13, 14, 15, 16]), ("b", [96, 15, 44, 3, 71, 20])):
        run_config = base_config(
            synthetic_mnist, tmp_path / name, **{"fraction-train": 0.5, "num-server-rounds": 2}
        )
        grid = renumbered(FakeGrid(6, dispatch, run_config), ids)
        rows = run_on(grid, run_config)
        trained = [
            grid.contexts[m.metadata.dst_node_id].node_config["partition-id"]
            for m in grid.sent
            if m.metadata.message_type == "train"
        ]
        curves.append(
            (trained, [r["test_accuracy"] for r in rows], [r["train_loss"] for r in rows])
        )
    assert curves[0] == curves[1]


def test_nodes_that_give_no_client_id_are_ordered_last_by_node_id(
    synthetic_mnist: Path, tmp_path: Path
) -> None:
    def handler(msg: Message, context: Context) -> Message:
        if context.node_config["partition-id"] in (1, 3):  # nodes 13 and 2
            raise RuntimeError("old client without the identify handler")
        return dispatch(msg, context)

    grid = renumbered(FakeGrid(4, handler, {}), [40, 13, 30, 2])  # partitions 0..3
    order = FederatedAveraging().client_order(grid, grid.node_ids)
    assert order == [40, 30, 2, 13]
