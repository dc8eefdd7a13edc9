"""Weights on the wire as one Array (protocol.packing): same values, a third of the objects,
and a malformed packed reply is rejected by the server with the reason, never averaged in."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from protocol.messages import (
    ARRAYS_KEY,
    CONFIG_KEY,
    LR_KEY,
    METRICS_KEY,
    NUM_EXAMPLES_KEY,
    TRAIN_LOSS_KEY,
)
from protocol.packing import PACKED_PREFIX, PackingError, is_packed, pack, unpack
from strategies.replies import TrainFold
from tasks.registry import get_task
from tests.fakes import set_task_identity

set_task_identity()


def state_of(task: str) -> dict[str, np.ndarray]:
    model = get_task(task).build_model()
    return {name: value.numpy() for name, value in model.state_dict().items()}


@pytest.mark.parametrize(("task", "named", "packed"), [("mnist-2nn", 16, 6), ("mnist-cnn", 21, 7)])
def test_a_packed_model_round_trips_exactly_in_a_third_of_the_objects(
    task: str, named: int, packed: int
) -> None:
    weights = state_of(task)
    record = pack(weights)
    assert is_packed(record)
    back = unpack(record)
    assert list(back) == list(weights)  # names, in state-dict order
    for name, value in weights.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        np.testing.assert_array_equal(back[name], value)

    def objects(arrays: ArrayRecord) -> int:
        content = RecordDict({ARRAYS_KEY: arrays, CONFIG_KEY: ConfigRecord({LR_KEY: 0.1})})
        message = Message(content, dst_node_id=1, message_type="train")
        return len(get_all_nested_objects(message))

    # A train message; each object is one request to or from the SuperLink on a federation.
    assert (objects(ArrayRecord({k: Array(v) for k, v in weights.items()})), objects(record)) == (
        named,
        packed,
    )


def test_mixed_dtypes_and_single_arrays_stay_named() -> None:
    mixed: dict[str, np.ndarray] = {"w": np.ones((2, 2), np.float32), "n": np.array([3])}
    single: dict[str, np.ndarray] = {"w": np.ones(3, np.float32)}
    for arrays in (mixed, single):
        record = pack(arrays)
        assert not is_packed(record) and list(record) == list(arrays)
        assert {k: v.tolist() for k, v in unpack(record).items()} == {
            k: v.tolist() for k, v in arrays.items()
        }


@pytest.mark.parametrize(
    ("key", "values", "problem"),
    [
        ('[["w", [2, 3]]]', np.zeros(5, np.float32), "its layout needs 6 values"),
        ("[[w]]", np.zeros(6, np.float32), "not JSON"),
        ('{"w": [6]}', np.zeros(6, np.float32), "not a list of"),
        ('[["w", [-6]]]', np.zeros(6, np.float32), "is not [name, [dims >= 0]]"),
        ('[["w", [3]], ["w", [3]]]', np.zeros(6, np.float32), "names an array twice"),
    ],
)
def test_a_malformed_packed_record_is_an_error_naming_the_problem(
    key: str, values: np.ndarray, problem: str
) -> None:
    with pytest.raises(PackingError, match=problem.replace("[", r"\[")):
        unpack(ArrayRecord({PACKED_PREFIX + key: Array(values)}))


def test_the_server_rejects_a_packed_reply_that_does_not_fit_and_keeps_the_others() -> None:
    global_arrays = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    fold = TrainFold(global_arrays)

    def reply(arrays: ArrayRecord, node: int) -> Message:
        request = Message(RecordDict(), dst_node_id=node, message_type="train")
        metrics = MetricRecord({NUM_EXAMPLES_KEY: 10, TRAIN_LOSS_KEY: 0.5})
        return Message(RecordDict({ARRAYS_KEY: arrays, METRICS_KEY: metrics}), reply_to=request)

    good = pack({"w": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)})
    short = ArrayRecord({PACKED_PREFIX + '[["w", [2, 3]], ["b", [3]]]': Array(np.ones(8, "f4"))})
    renamed = pack({"x": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)})
    fold.add(reply(good, 1), sender=1)
    fold.add(reply(short, 2), sender=2)
    fold.add(reply(renamed, 3), sender=3)
    assert fold.valid == 1
    assert (
        fold.rejections[0] == "node 2: arrays: packed array of shape [8], its layout needs 9 values"
    )
    assert fold.rejections[1].startswith("node 3:") and "x" in fold.rejections[1]
