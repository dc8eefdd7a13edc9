"""Conversions between Flower's ArrayRecord and named numpy arrays."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

from protocol.packing import NamedArrays

__all__ = ["NamedArrays", "to_array_record", "to_named_arrays"]


def to_named_arrays(record: ArrayRecord) -> NamedArrays:
    """Return the record's arrays by name (a copy; the record is left as it is)."""
    return {name: array.numpy() for name, array in record.items()}


def to_array_record(arrays: NamedArrays) -> ArrayRecord:
    """Wrap named numpy arrays in an ArrayRecord, keeping the names."""
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in arrays.items()})
