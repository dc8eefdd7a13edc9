"""Model weights on the wire: all of a model's tensors in one Flower ``Array``.

Flower moves each ``Array`` of an ``ArrayRecord`` as objects of its own (the
array and its chunks), and on a real federation every object is a request to
or from the SuperLink (TLS, node authentication, SQL bookkeeping), two at a
time. A state dict of the 2NN's 6 tensors makes a 16-object message, the
CNN's 8 tensors 21; packed, they are 6 and 7. The values are the same bytes:
the packed array is the tensors' values concatenated in state-dict order,
and the record's one key is ``PACKED_PREFIX`` plus a JSON list of
``[name, shape]``, so the receiver rebuilds the named arrays without knowing
the model, and the server validates names, shapes and values as before.

Only a record of two or more arrays of one dtype is packed; anything else,
and a receiver given named arrays, stays named: ``unpack`` reads both forms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord
from numpy.typing import NDArray

PACKED_PREFIX = "packed:"

NamedArrays = dict[str, NDArray[np.generic]]


class PackingError(ValueError):
    """A packed ArrayRecord whose layout or size is not what its key says."""


def pack(arrays: Mapping[str, NDArray[np.generic]]) -> ArrayRecord:
    """One ``Array`` holding every array of ``arrays``, keyed by their names and shapes."""
    if len(arrays) < 2 or len({value.dtype for value in arrays.values()}) != 1:
        return ArrayRecord(
            {name: Array(np.ascontiguousarray(value)) for name, value in arrays.items()}
        )
    layout = json.dumps([[name, list(value.shape)] for name, value in arrays.items()])
    flat = np.concatenate([np.ascontiguousarray(value).reshape(-1) for value in arrays.values()])
    return ArrayRecord({PACKED_PREFIX + layout: Array(flat)})


def is_packed(record: ArrayRecord) -> bool:
    """Whether ``record`` is one packed array (see ``pack``)."""
    keys = list(record.keys())
    return len(keys) == 1 and keys[0].startswith(PACKED_PREFIX)


def unpack(record: ArrayRecord) -> NamedArrays:
    """The named arrays of ``record``, packed or not (copies; the record is left as it is).

    Raises ``PackingError`` naming the problem when a packed record's layout
    is malformed or does not add up to its array's size.
    """
    if not is_packed(record):
        return {name: array.numpy() for name, array in record.items()}
    key = next(iter(record.keys()))
    layout = _layout(key[len(PACKED_PREFIX) :])
    flat = record[key].numpy()
    sizes = [math.prod(shape) for _, shape in layout]
    if flat.ndim != 1 or flat.size != sum(sizes):
        raise PackingError(
            f"packed array of shape {list(flat.shape)}, its layout needs {sum(sizes)} values"
        )
    arrays: NamedArrays = {}
    offset = 0
    for (name, shape), size in zip(layout, sizes, strict=True):
        arrays[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return arrays


def _layout(text: str) -> list[tuple[str, tuple[int, ...]]]:
    try:
        entries = json.loads(text)
    except ValueError:
        raise PackingError(f"packed layout is not JSON: {text[:80]!r}") from None
    layout: list[tuple[str, tuple[int, ...]]] = []
    if not isinstance(entries, list):
        raise PackingError(f"packed layout is not a list of [name, shape]: {text[:80]!r}")
    for entry in entries:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or not isinstance(entry[1], list)
            or not all(type(d) is int and d >= 0 for d in entry[1])
        ):
            raise PackingError(f"packed layout entry {entry!r} is not [name, [dims >= 0]]")
        layout.append((entry[0], tuple(entry[1])))
    names = [name for name, _ in layout]
    if len(set(names)) != len(names):
        raise PackingError("packed layout names an array twice")
    return layout
