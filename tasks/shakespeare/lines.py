"""Examples as lines: a role's line is one example, and every character of it is predicted.

The paper's Shakespeare examples are lines: its Table 2 gives u = E n / (K B) =
7.4 updates per round at E=1, B=10, about 74 examples per client, and the mean
role holds about 70 lines (``benchmarks/shakespeare_corpus.py``). The paper
leaves the details of a line's encoding open; ours, after TFF's Shakespeare
baseline (the paper's authors' group):

- A line is normalised (runs of white space become one space, ends stripped)
  and encoded as bytes, one class per byte value (``VOCAB_SIZE`` = 256).
- It reads ``BOS line EOL``: a **begin-of-line token** (``BOS``, byte 1) starts
  every line, so its first character is predicted from no context (each line
  starts from a zero LSTM state, not the previous line's tail), and the model
  **predicts the end of the line** (``EOL``, byte 10, the newline it replaces).
  The corpus never holds bytes 0, 1 or 10 inside a line.
- The LSTM is unrolled over at most ``SEQUENCE_LENGTH`` = 80 steps: the input
  is the tokens but the last, the targets the tokens but the first, so a line
  of L characters has L + 1 predicted characters. A line of more than 79
  characters is split into pieces of 80 predictions, consecutive pieces sharing
  one token (the last target of a piece is the first input of the next) so
  that every character is predicted exactly once; each piece is an example and
  starts from a zero state. The Gutenberg plays have no line over 77
  characters, so there a piece is a line.
- A batch is padded to its longest example, not to 80: inputs with ``PAD``
  (byte 0), targets with ``IGNORE`` (-100, ``CrossEntropyLoss``'s
  ``ignore_index``), so padding is never trained on nor scored. The loss of a
  batch is the mean cross-entropy over its predicted characters, and accuracy
  is correct predictions over all predicted characters.

n_k, what the server weights by and what B counts, is the number of examples:
the client's training lines (pieces, were any line split).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from tasks.training import IGNORE_INDEX

SEQUENCE_LENGTH = 80  # the paper's unroll length: predictions per example, at most
VOCAB_SIZE = 256  # one class per byte value: the paper's one-byte characters
PAD = 0  # input padding after an example's end
BOS = 1  # begin of line: the first input of every line
EOL = 10  # end of line ("\n"): the last target of every line
IGNORE = IGNORE_INDEX  # target padding (-100): never trained on nor scored
RESERVED = frozenset({PAD, BOS, EOL})


def normalise(line: str) -> str:
    """Runs of white space to one space, ends stripped (as LEAF does to its text)."""
    return " ".join(line.split())


def encode_line(line: str) -> list[NDArray[np.uint8]]:
    """The line's pieces: token arrays of at most ``SEQUENCE_LENGTH`` + 1 tokens each.

    The tokens are ``BOS``, the line's bytes, ``EOL``; piece i holds tokens
    ``[80 i, 80 i + 81)``, so consecutive pieces share one token.
    """
    body = normalise(line).encode("utf-8")
    clash = RESERVED.intersection(body)
    if clash:
        raise ValueError(f"line {line[:40]!r} holds reserved byte(s) {sorted(clash)}")
    tokens = np.frombuffer(bytes([BOS]) + body + bytes([EOL]), dtype=np.uint8)
    return [
        tokens[start : start + SEQUENCE_LENGTH + 1]
        for start in range(0, len(tokens) - 1, SEQUENCE_LENGTH)
    ]


def decode(codes: NDArray[np.integer]) -> str:
    """Bytes back to text, the reserved tokens dropped (for tests and inspection)."""
    return bytes(int(c) for c in codes if 0 <= c < VOCAB_SIZE and c not in RESERVED).decode(
        "utf-8", errors="replace"
    )


class LineExamples:
    """An ``ExampleSet`` of lines (or pieces of lines), every next character a target.

    All pieces are stored once, end to end, as one byte per token
    (``tokens``), with each piece's start (``starts``) and token count
    (``lengths``, 2 to 81); ``batch`` pads only the pieces asked for.
    """

    def __init__(
        self, tokens: NDArray[np.uint8], starts: NDArray[np.int64], lengths: NDArray[np.int64]
    ) -> None:
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        if starts.shape != lengths.shape:
            raise ValueError(f"{starts.size} starts but {lengths.size} lengths")
        if lengths.size and (
            lengths.min() < 2
            or lengths.max() > SEQUENCE_LENGTH + 1
            or starts.min() < 0
            or (starts + lengths).max() > len(tokens)
        ):
            raise ValueError("pieces must hold 2 to 81 tokens inside the token array")
        self.tokens = tokens
        self.starts = starts
        self.lengths = lengths

    @classmethod
    def of_lines(cls, lines: Sequence[str]) -> LineExamples:
        """One example per line (per piece of a line over 79 characters)."""
        pieces = [piece for line in lines for piece in encode_line(line)]
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)
        return cls(tokens, starts[: len(pieces)], lengths)

    @classmethod
    def concatenate(cls, parts: Sequence[LineExamples]) -> LineExamples:
        """The union of several sets, in order."""
        if not parts:
            return cls.of_lines([])
        offsets = np.cumsum([0] + [len(p.tokens) for p in parts[:-1]])
        return cls(
            np.concatenate([p.tokens for p in parts]),
            np.concatenate([p.starts + o for p, o in zip(parts, offsets, strict=True)]),
            np.concatenate([p.lengths for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def num_targets(self) -> int:
        """Predicted characters over all examples: each piece's tokens but its first."""
        return int((self.lengths - 1).sum())

    def batch(self, indices: NDArray[np.int64]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), both ``[len(indices), T]`` with T the longest piece's predictions.

        Inputs are padded with ``PAD`` and targets with ``IGNORE``.
        """
        indices = np.asarray(indices, dtype=np.int64)
        starts, lengths = self.starts[indices], self.lengths[indices]
        steps = int(lengths.max()) - 1 if len(indices) else 0
        offsets = np.arange(steps, dtype=np.int64)[None, :]
        inside = offsets < (lengths - 1)[:, None]  # step s reads token s, predicts token s + 1
        at = np.where(inside, starts[:, None] + offsets, 0)
        inputs = np.where(inside, self.tokens[at].astype(np.int64), PAD)
        targets = np.where(inside, self.tokens[at + 1].astype(np.int64), IGNORE)
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def target_counts(self) -> NDArray[np.int64]:
        """How often each token is a target (for the most-common-character baseline)."""
        first = np.zeros(len(self.tokens), dtype=bool)
        first[self.starts] = True  # a piece's first token is input only
        targets = self.tokens[~first]
        return np.bincount(targets, minlength=VOCAB_SIZE).astype(np.int64)
