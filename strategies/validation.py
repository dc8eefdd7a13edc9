"""Checks that a client's train reply is fit to enter the FedAvg average.

A reply is rejected, never averaged in, when it carries an error, lacks a
positive integer n_k, has arrays whose names, shapes or dtypes differ from the
global model's, holds a NaN or Inf, or (optionally) moves the model further
than a norm bound. Each check returns a human-readable reason; ``None`` means
the reply is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from protocol.messages import NUM_EXAMPLES_KEY


@dataclass(frozen=True)
class ArraySpec:
    """Name, shape and dtype of one array of the global model."""

    shape: tuple[int, ...]
    dtype: str


def spec_of(arrays: Mapping[str, NDArray[np.generic]]) -> dict[str, ArraySpec]:
    """Return the expected spec (shape and dtype per name) of ``arrays``."""
    return {name: ArraySpec(tuple(value.shape), str(value.dtype)) for name, value in arrays.items()}


def check_num_examples(
    value: object, *, max_examples: int | None = None, key: str = NUM_EXAMPLES_KEY
) -> str | None:
    """Return why ``value`` (the reply's metric ``key``) is not a plausible n_k, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} must be a number, got {value!r}"
    if isinstance(value, float) and not value.is_integer():
        return f"{key} must be a whole number, got {value!r}"
    if value <= 0:
        return f"{key} must be positive, got {value!r}"
    if max_examples is not None and value > max_examples:
        return f"{key}={value!r} exceeds the plausible maximum {max_examples}"
    return None


def check_arrays(
    arrays: Mapping[str, NDArray[np.generic]],
    expected: Mapping[str, ArraySpec],
    *,
    reference: Mapping[str, NDArray[np.generic]] | None = None,
    max_update_norm: float | None = None,
) -> str | None:
    """Return why ``arrays`` cannot be averaged into the model, or None.

    Args:
        arrays: the client's returned weights w^k_{t+1}.
        expected: the global model's names, shapes and dtypes.
        reference: the global weights w_t the client started from (needed
            only for the norm bound).
        max_update_norm: reject when ||w^k_{t+1} - w_t||_2 exceeds this.
    """
    if set(arrays) != set(expected):
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        return f"array names differ from the global model (missing {missing}, unexpected {extra})"
    squared_norm = 0.0
    for name, spec in expected.items():
        value = arrays[name]
        if tuple(value.shape) != spec.shape:
            return f"array {name!r} has shape {tuple(value.shape)}, expected {spec.shape}"
        if str(value.dtype) != spec.dtype:
            return f"array {name!r} has dtype {value.dtype}, expected {spec.dtype}"
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            return f"array {name!r} holds NaN or Inf"
        if max_update_norm is not None and reference is not None:
            delta = value.astype(np.float64) - reference[name].astype(np.float64)
            squared_norm += float(np.vdot(delta, delta))
    if max_update_norm is not None and reference is not None:
        norm = float(np.sqrt(squared_norm))
        if norm > max_update_norm:
            return f"update norm {norm:.4g} exceeds the bound {max_update_norm:.4g}"
    return None
