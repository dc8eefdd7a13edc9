"""Reader for the original MNIST IDX files (LeCun et al.), gzipped or not.

Format: a 4-byte magic (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order.
A truncated, mislabelled or corrupt file raises ``IdxFormatError`` naming it.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_TYPE_CODES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class IdxFormatError(ValueError):
    """An IDX file that cannot be read; the message names the file."""


def read_idx(path: Path) -> NDArray[np.generic]:
    """Read one IDX file (``.gz`` or plain) into a numpy array."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = stream.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise IdxFormatError(f"{path}: cannot read IDX file ({error})") from error
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, type_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or type_code not in _TYPE_CODES or ndim == 0:
        raise IdxFormatError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise IdxFormatError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    dtype = np.dtype(_TYPE_CODES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise IdxFormatError(
            f"{path}: expected {expected} data bytes for shape {shape}, "
            f"found {len(raw) - header_end} (truncated or corrupt)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: NDArray[np.generic]) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in .gz)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPE_CODES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.dtype(_TYPE_CODES[codes[native]])).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as stream:
            stream.write(payload)
    else:
        path.write_bytes(payload)
