"""Keras-style recurrent layers for pysster's networks: LSTM and GRU cells unrolled over time.

Unrolled, ``dropout_recurrent`` works as in Keras: one dropout mask per sequence on the hidden
state fed back at every step (and one on the inputs for ``dropout_input``), shared by the gates.
GRU follows PyTorch's (and Keras 2.3+'s ``reset_after=True``) equations; weights start as Keras
starts them (Glorot-uniform kernels, orthogonal recurrent kernels, zero biases, LSTM forget-gate
bias 1).
"""
import torch
from torch import nn


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer over (n, length, features), optionally bidirectional.

    Keras semantics: ``dropout_input`` and ``dropout_recurrent`` draw one mask per sequence and
    direction, used at every time step (on the inputs, and on the hidden state fed back).
    Returns the outputs at every step, shape=(n, length, units × directions), or, with
    ``return_sequences=False``, the final output of each direction, shape=(n, units ×
    directions) (the backward direction ends at position 0).
    """

    def __init__(self, kind, input_size, units, bidirectional=True, dropout_input=0.0,
                 dropout_recurrent=0.0, return_sequences=False):
        super().__init__()
        if kind not in ('LSTM', 'GRU'):
            raise ValueError(f"kind must be 'LSTM' or 'GRU', got {kind!r}")
        self.kind, self.units = kind, units
        self.dropout_input, self.dropout_recurrent = dropout_input, dropout_recurrent
        self.return_sequences = return_sequences
        gates = 4 if kind == 'LSTM' else 3
        directions = 2 if bidirectional else 1
        # ih: input kernel and bias; hh: recurrent kernel (GRU: with the bias inside r ⊙ (…))
        self.ih = nn.ModuleList(nn.Linear(input_size, gates * units) for _ in range(directions))
        self.hh = nn.ModuleList(nn.Linear(units, gates * units, bias=kind == 'GRU')
                                for _ in range(directions))
        self.reset_parameters()

    def reset_parameters(self):
        for ih, hh in zip(self.ih, self.hh):
            nn.init.xavier_uniform_(ih.weight)
            nn.init.zeros_(ih.bias)
            for block in hh.weight.data.chunk(3 if self.kind == 'GRU' else 4):
                nn.init.orthogonal_(block)
            if hh.bias is not None:
                nn.init.zeros_(hh.bias)
            if self.kind == 'LSTM':  # Keras' unit_forget_bias
                ih.bias.data[self.units:2 * self.units] = 1.0

    def _mask(self, like, p):
        if not self.training or p == 0:
            return None
        return torch.bernoulli(torch.full_like(like, 1 - p)) / (1 - p)

    def _direction(self, x, ih, hh):
        n, length, _ = x.shape
        mask = self._mask(x[:, 0], self.dropout_input)
        inputs = ih(x if mask is None else x * mask.unsqueeze(1))  # all steps at once
        h = x.new_zeros(n, self.units)
        c = x.new_zeros(n, self.units)
        hidden_mask = self._mask(h, self.dropout_recurrent)
        outputs = []
        for t in range(length):
            recurrent = hh(h if hidden_mask is None else h * hidden_mask)
            if self.kind == 'LSTM':
                i, f, g, o = (inputs[:, t] + recurrent).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                x_r, x_z, x_n = inputs[:, t].chunk(3, dim=1)
                h_r, h_z, h_n = recurrent.chunk(3, dim=1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            outputs.append(h)
        return outputs

    def forward(self, x):
        results = []
        for d, (ih, hh) in enumerate(zip(self.ih, self.hh)):
            outputs = self._direction(x if d == 0 else x.flip(1), ih, hh)
            if not self.return_sequences:
                results.append(outputs[-1])
            else:
                steps = torch.stack(outputs, dim=1)
                results.append(steps if d == 0 else steps.flip(1))
        return torch.cat(results, dim=-1)
