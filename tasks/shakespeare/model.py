"""The paper's character LSTM (section 3).

"a two-layer character LSTM ... each character is embedded into an 8
dimensional space, then two LSTM layers of 256 nodes, then a softmax output
layer with one node per character; 866,578 parameters, unroll length 80."

The paper does not give its vocabulary; it says a character is a one-byte
string. With one class per byte value (256) this model has 866,560
parameters, 18 fewer than the paper's count; PyTorch's LSTM has two bias
vectors per gate where TensorFlow's has one, so no vocabulary gives 866,578
exactly (LEAF's 80-character vocabulary gives 819,920). The softmax is folded
into the cross-entropy loss: the model reads an example of up to 80 tokens and
returns, at every step, the logits of the next character (``lines``), each
example from a zero initial state.
"""

from __future__ import annotations

import torch
from torch import nn

from tasks.shakespeare.lines import VOCAB_SIZE

PAPER_PARAMETERS = 866_578
LSTM_PARAMETERS = 866_560  # ours, with VOCAB_SIZE = 256
EMBEDDING_DIM = 8
HIDDEN = 256
LAYERS = 2


class CharLSTM(nn.Module):
    """Embedding(256, 8) -> LSTM(256) -> LSTM(256) -> Linear(256, 256) at every step.

    ``[batch, T]`` tokens in, ``[batch, T, 256]`` logits out. The LSTM is
    causal, so padding after an example's end never changes its predictions.
    """

    def __init__(self, vocab_size: int = VOCAB_SIZE) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM)
        self.lstm = nn.LSTM(EMBEDDING_DIM, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.output = nn.Linear(HIDDEN, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embedding(x))
        return self.output(hidden)  # type: ignore[no-any-return]
