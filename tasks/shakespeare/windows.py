"""Samples as 80-character windows cut on demand from an encoded text.

A role's text is stored once, as one byte per character (UTF-8; the corpus
is ASCII), with ``SEQUENCE_LENGTH`` padding bytes (0, which text never
holds) in front. A sample is identified by the position p of its label: its
input is ``text[p - 80 : p]`` and its label ``text[p]``. So a role with
50,000 characters costs 50,000 bytes plus an index array, never a
50,000 x 80 tensor; ``batch`` gathers only the windows asked for.

Example: for the text "To be, or not" every character is the label of one
sample; the sample labelled "b" has as input 77 padding bytes and "To ".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

SEQUENCE_LENGTH = 80  # the paper's unroll length
VOCAB_SIZE = 256  # one class per byte value: the paper's one-byte characters
PAD = 0

_OFFSETS = np.arange(-SEQUENCE_LENGTH, 0, dtype=np.int64)


def encode_lines(lines: Sequence[str]) -> NDArray[np.uint8]:
    """Join lines with single spaces and encode them, padding included.

    Newlines become spaces and runs of spaces are collapsed, as LEAF does.
    """
    text = " ".join(" ".join(line.split()) for line in lines).replace("\x00", "")
    body = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return np.concatenate([np.full(SEQUENCE_LENGTH, PAD, dtype=np.uint8), body])


def decode(codes: NDArray[np.integer]) -> str:
    """Bytes back to text, padding dropped (for tests and inspection)."""
    return bytes(int(c) for c in codes if c != PAD).decode("utf-8", errors="replace")


class CharWindows:
    """An ``ExampleSet`` of (80 preceding characters, next character) samples.

    ``positions`` are the label positions in ``text``; each must be at least
    ``SEQUENCE_LENGTH`` so that its window lies inside the (padded) text.
    """

    def __init__(self, text: NDArray[np.uint8], positions: NDArray[np.int64]) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < SEQUENCE_LENGTH or positions.max() >= len(text)):
            raise ValueError(
                f"label positions must lie in [{SEQUENCE_LENGTH}, {len(text)}), "
                f"got [{positions.min()}, {positions.max()}]"
            )
        self.text = text
        self.positions = positions

    @classmethod
    def of_lines(cls, lines: Sequence[str]) -> CharWindows:
        """One sample per character of the joined lines."""
        text = encode_lines(lines)
        return cls(text, np.arange(SEQUENCE_LENGTH, len(text), dtype=np.int64))

    @classmethod
    def concatenate(cls, parts: Sequence[CharWindows]) -> CharWindows:
        """The union of several sets; no window crosses from one part into another."""
        if not parts:
            return cls(np.zeros(SEQUENCE_LENGTH, dtype=np.uint8), np.zeros(0, dtype=np.int64))
        offsets = np.cumsum([0] + [len(p.text) for p in parts[:-1]])
        text = np.concatenate([p.text for p in parts])
        positions = np.concatenate([p.positions + o for p, o in zip(parts, offsets, strict=True)])
        return cls(text, positions)

    def __len__(self) -> int:
        return len(self.positions)

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        labels_at = self.positions[np.asarray(indices, dtype=np.int64)]
        inputs = self.text[labels_at[:, None] + _OFFSETS]
        return torch.from_numpy(inputs.astype(np.int64)), torch.from_numpy(
            self.text[labels_at].astype(np.int64)
        )

    def label_counts(self) -> NDArray[np.int64]:
        """How often each byte value is a label (for the majority-class baseline)."""
        return np.bincount(self.text[self.positions], minlength=VOCAB_SIZE).astype(np.int64)
