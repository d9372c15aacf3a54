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
layer directly, as gnomix trains its base classifiers first. :meth:`WindowLAI.init_naive_bayes`
starts each window's classifier at the window's naive-Bayes score from the training panel's
allele frequencies (a closed-form base layer, which training then refines), and in training the
loss is computed per window (:meth:`WindowLAI.training_loss`): the same value as per variant,
without the cost of scoring every variant.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from dlutil.genotypes.encoding import AlleleEncoding
from dlutil.genotypes.h5 import IGNORE, MISSING

# measured on the local-ancestry example (benchmarks/bench_lai_accuracy.py): windows of 200
# variants (0.1 cM there), a smoother reaching 25 windows (~5k variants, 5 cM), no input dropout
WINDOW_DEFAULTS = {'window': 200, 'hidden': 0, 'smoother_width': 25, 'smoother_channels': 64,
                   'dropout': 0.0, 'input_dropout': 0.0, 'aux_weight': 1.0,
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

    def __init__(self, n_variants, n_classes, window=200, hidden=0, smoother_width=25,
                 smoother_channels=64, dropout=0.0, input_dropout=0.0, aux_weight=1.0,
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
        self._window_logits = self._smoothed = None

    def _window_inputs(self, x):
        """Features per window, shape=(n_windows, n, window · channels), variant-major."""
        n, length = x.shape[0], self.n_windows * self.window
        if (self.encoder.encoding != 'one_hot' or x.dim() != 2 or x.is_floating_point()
                or x.shape[1] != self.n_variants):
            x = self.input_dropout(self.encoder(x))
            if length != x.shape[2]:
                x = F.pad(x, (0, length - x.shape[2]))
            x = x.reshape(n, self.channels, self.n_windows, self.window)
            return x.permute(2, 0, 3, 1).reshape(self.n_windows, n, -1), 1.0
        # alleles straight to the windows' layout: one byte per allele is moved, not floats;
        # input dropout drops alleles (as missing), its 1 / (1 - p) applied after the matmul
        scale, p = 1.0, self.input_dropout.p
        if self.training and p > 0:
            x = x.masked_fill(torch.rand(x.shape, device=x.device) < p, MISSING)
            scale = 1 / (1 - p)
        if length != x.shape[1]:
            x = F.pad(x, (0, length - x.shape[1]), value=MISSING)
        x = x.reshape(n, self.n_windows, self.window).transpose(0, 1)
        x = torch.stack([x == allele for allele in range(self.n_alleles)], dim=3)
        return x.reshape(self.n_windows, n, -1).float(), scale

    def window_scores(self, x):
        """Ancestry logits per window before smoothing, shape=(n, n_classes, n_windows)."""
        x, scale = self._window_inputs(x)
        h = torch.baddbmm(self.bias, x, self.weight, alpha=scale)  # a matmul per window
        if self.weight2 is not None:
            h = torch.baddbmm(self.bias2, torch.relu(h), self.weight2)
        return h.permute(1, 2, 0)

    def forward(self, x):
        scores = self.window_scores(x)
        smoothed = scores + self.smoother(self.dropout(scores))
        if self.training:  # for the loss at the windows (training_loss)
            self._window_logits, self._smoothed = scores, smoothed
        return torch.repeat_interleave(smoothed, self.window, dim=2)[:, :, :self.n_variants]

    def window_label_counts(self, y):
        """How many variants of each window carry each label, float (n, n_classes, n_windows);
        :data:`IGNORE` labels left out. One comparison and one window sum per class, in the
        labels' own dtype (an int64 scatter over every variant cost 3x as much at batch 128)."""
        # min and max settle most batches; the elementwise check runs only for negatives
        if y.numel() and (int(y.max()) >= self.n_classes or int(y.min()) < 0):
            bad = y[(y >= self.n_classes) | ((y < 0) & (y != IGNORE))]
            if bad.numel():
                raise ValueError(f'labels must be 0..{self.n_classes - 1} or {IGNORE} '
                                 f'(ignored), got {int(bad[0])}')
        n, pad = y.shape[0], self.n_windows * self.window - y.shape[1]
        if pad:  # the last window's padding counts for no class
            y = F.pad(y, (0, pad), value=self.n_classes)
        y = y.reshape(n, self.n_windows, self.window)
        return torch.stack([(y == label).sum(dim=2, dtype=torch.float32)
                            for label in range(self.n_classes)], dim=1)

    def training_loss(self, y, weight=None):
        """The per-variant cross-entropy of the last training pass (``weight`` per class, as
        ``F.cross_entropy``'s), plus ``aux_weight`` × the unweighted one of the window scores
        before smoothing, computed per window: every variant of a window has the window's
        logits, so each window's term is its label counts × its log-probabilities (the same
        value as at the variants, at a 1/window of the cost). None without a training pass of
        this batch."""
        smoothed = self._smoothed
        if smoothed is None or smoothed.shape[0] != y.shape[0]:
            return None
        counts = self.window_label_counts(y)
        weighted = counts if weight is None else counts * weight.view(1, -1, 1)
        loss = -(weighted * F.log_softmax(smoothed.float(), dim=1)).sum() / weighted.sum()
        if self.aux_weight:
            log_p = F.log_softmax(self._window_logits.float(), dim=1)
            loss = loss - self.aux_weight * (counts * log_p).sum() / counts.sum()
        self._window_logits = self._smoothed = None
        return loss

    def init_naive_bayes(self, table):
        """Start each window's classifier at the window's naive-Bayes score: ``table`` is
        log P(allele | ancestry) per variant, (n_alleles, n_classes, n_variants) (centred,
        :func:`~dlutil.genotypes.encoding.log_likelihood_table`). With a hidden layer of at
        least 2 × n_classes units, units k and n_classes + k carry +score and −score, and the
        second layer recombines them (ReLU(s) − ReLU(−s) = s); the other units keep their
        random start. Returns False (nothing changed) with a smaller hidden layer."""
        k, hidden = self.n_classes, self.weight.shape[2]
        if self.weight2 is not None and hidden < 2 * k:
            return False
        table = torch.as_tensor(table, dtype=torch.float32)
        length = self.n_windows * self.window
        if self.encoder.encoding == 'one_hot':  # features (variant, allele) → (classes)
            per_variant = F.pad(table, (0, length - self.n_variants)).permute(2, 0, 1)
        else:  # the likelihood features are the table's rows already: their sum
            per_variant = torch.eye(k).expand(length, k, k)
        nb = per_variant.reshape(self.n_windows, -1, k)  # (windows, window · channels, k)
        with torch.no_grad():
            if self.weight2 is None:
                self.weight.copy_(nb)
                self.bias.zero_()
            else:
                self.weight[:, :, :k] = nb
                self.weight[:, :, k:2 * k] = -nb
                self.bias[:, :, :2 * k] = 0
                self.weight2[:, :2 * k] = torch.cat([torch.eye(k), -torch.eye(k)])
                self.weight2[:, 2 * k:] *= 0.1
                self.bias2.zero_()
        return True

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
