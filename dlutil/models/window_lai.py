"""A window-based network for local ancestry: position-specific base classifiers, then a smoother.

The design of LAI-Net and gnomix (Maas et al., Bioinformatics 2021; Montserrat et al., NeurIPS
2020), in PyTorch and trained end to end:

1. The variants are cut into windows of ``window`` consecutive variants. Each window has its own
   dense layer(s) over its own one-hot alleles (position-specific weights: which allele marks
   which ancestry differs at every variant, which shared convolution weights cannot learn),
   giving ancestry scores per window.
2. A convolution across windows (``smoother_width`` windows wide) smooths the scores, as
   gnomix's second stage does: ancestry changes rarely between neighbouring windows.
3. The smoothed scores are expanded back to every variant of the window.

An auxiliary cross-entropy on the window scores before smoothing (``aux_weight``) trains the base
layer directly, as gnomix trains its base classifiers first.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from dlutil.genotypes.encoding import AlleleEncoding
from dlutil.genotypes.h5 import IGNORE

# measured on the local-ancestry example (benchmarks/bench_lai_accuracy.py): windows of 100
# variants, a smoother reaching 49 windows (~5k variants), input dropout 0.2
WINDOW_DEFAULTS = {'window': 100, 'hidden': 0, 'smoother_width': 49, 'smoother_channels': 64,
                   'dropout': 0.0, 'input_dropout': 0.2, 'aux_weight': 1.0,
                   'encoding': 'one_hot'}


class WindowLAI(nn.Module):
    """Per-window dense layers, a smoothing convolution across windows, calls per variant.

    Parameters
    ----------
    n_variants, n_classes: int
    window: int
        Variants per window (the last window is padded with missing variants).
    hidden: int
        Units of a hidden layer in each window's classifier (0: a linear classifier, like
        gnomix's logistic regression).
    smoother_width: int
        Windows seen by the smoothing convolution (odd).
    smoother_channels: int
        Channels of its hidden layer.
    dropout: float
        Dropout on the window scores before smoothing.
    input_dropout: float
        Dropout on the one-hot alleles (a regulariser against a small panel).
    aux_weight: float
        Weight of the auxiliary loss on the window scores.
    encoding: 'one_hot' or 'likelihood'
        The input encoding (:mod:`dlutil.genotypes.encoding`); 'likelihood' needs
        ``self.encoder.set_frequencies(...)`` from the training panel.
    n_alleles: int

    Input: alleles, shape=(n, variants), or one-hot, shape=(n, n_alleles, variants).
    Output: logits, shape=(n, n_classes, variants).
    """

    def __init__(self, n_variants, n_classes, window=100, hidden=0, smoother_width=49,
                 smoother_channels=64, dropout=0.0, input_dropout=0.2, aux_weight=1.0,
                 encoding='one_hot', n_alleles=2):
        super().__init__()
        for name, value in (('n_variants', n_variants), ('n_classes', n_classes),
                            ('window', window), ('smoother_width', smoother_width),
                            ('smoother_channels', smoother_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'WindowLAI: {name} must be a positive integer, got {value!r}')
        if not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f'WindowLAI: hidden must be an integer >= 0, got {hidden!r}')
        self.n_variants, self.n_classes, self.n_alleles = n_variants, n_classes, n_alleles
        self.window = min(window, n_variants)
        self.n_windows = -(-n_variants // self.window)
        self.aux_weight = float(aux_weight)
        self.encoder = AlleleEncoding(n_variants, n_classes, encoding, n_alleles)
        self.channels = self.encoder.channels
        features = self.channels * self.window
        out = hidden or n_classes
        bound = 1 / math.sqrt(features)  # nn.Linear's initialisation, one layer per window
        self.weight = nn.Parameter(torch.empty(self.n_windows, features, out).uniform_(-bound,
                                                                                        bound))
        self.bias = nn.Parameter(torch.zeros(self.n_windows, 1, out))
        if hidden:
            bound = 1 / math.sqrt(hidden)
            self.weight2 = nn.Parameter(torch.empty(self.n_windows, hidden, n_classes)
                                        .uniform_(-bound, bound))
            self.bias2 = nn.Parameter(torch.zeros(self.n_windows, 1, n_classes))
        else:
            self.weight2 = self.bias2 = None
        self.dropout = nn.Dropout(dropout)
        self.input_dropout = nn.Dropout(input_dropout)
        self.smoother = nn.Sequential(
            nn.Conv1d(n_classes, smoother_channels, smoother_width, padding='same'),
            nn.ReLU(),
            nn.Conv1d(smoother_channels, n_classes, 1))
        # saved with the weights: what a checkpoint needs to rebuild the network (the window
        # and smoother's reach may have been resolved from centimorgans)
        self.register_buffer('layout', torch.tensor([n_variants, n_classes, n_alleles,
                                                     self.window, smoother_width]))
        self.register_buffer('positions', torch.zeros(n_variants, dtype=torch.int64))
        self._window_logits = None

    def window_scores(self, x):
        """Ancestry logits per window before smoothing, shape=(n, n_classes, n_windows)."""
        x = self.input_dropout(self.encoder(x))
        n, length = x.shape[0], self.n_windows * self.window
        if length != x.shape[2]:
            x = F.pad(x, (0, length - x.shape[2]))
        # (n, channels, windows, window) -> (windows, n, window · channels): a matmul per window
        x = x.reshape(n, self.channels, self.n_windows, self.window)
        x = x.permute(2, 0, 3, 1).reshape(self.n_windows, n, -1)
        h = torch.baddbmm(self.bias, x, self.weight)
        if self.weight2 is not None:
            h = torch.baddbmm(self.bias2, torch.relu(h), self.weight2)
        return h.permute(1, 2, 0)

    def forward(self, x):
        scores = self.window_scores(x)
        if self.training:
            self._window_logits = scores
        smoothed = scores + self.smoother(self.dropout(scores))
        return torch.repeat_interleave(smoothed, self.window, dim=2)[:, :, :self.n_variants]

    def regularization(self, y_true=None):
        """``aux_weight`` × the cross-entropy of the window scores of the last training pass
        against the labels of their variants (0 in evaluation)."""
        if not self.training or not self.aux_weight or self._window_logits is None \
                or y_true is None:
            return 0.0
        expanded = torch.repeat_interleave(self._window_logits, self.window,
                                           dim=2)[:, :, :self.n_variants]
        return self.aux_weight * F.cross_entropy(expanded, y_true.long(),
                                                 ignore_index=IGNORE)


__all__ = ['WindowLAI', 'WINDOW_DEFAULTS']
