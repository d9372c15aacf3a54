"""Alleles as the networks take them: :func:`one_hot_alleles` and :class:`AlleleEncoding`.

- ``'one_hot'`` (deepLAI's): two channels per variant, REF and ALT; a missing allele is all
  zeros. It carries no information about *which* ancestry an allele points to at that variant,
  so a network whose weights are shared across positions (a convolution) has nothing to learn
  from it when the panel's signal is allele frequencies, as in coalescent simulations.
- ``'likelihood'``: one channel per ancestry, the log-likelihood of the observed allele under
  that ancestry's allele frequency at this variant in the training panel (counts with a
  pseudo-count of 1/2 on each allele), centred over the ancestries (an allele equally likely
  under every ancestry gives zeros); zeros for a missing allele, and for variants whose minor
  allele the panel holds fewer than ``min_minor_count`` times: the frequencies are counted on
  the training haplotypes themselves, where a rare allele marks its own founder's ancestry
  perfectly yet says little about new haplotypes, a leak rather than a signal. A window's sum of
  these features is the window's naive-Bayes score, which a convolution can learn with weights
  shared across positions. The frequencies are buffers of the module: computed once from the
  training panel, saved with the model, applied to queries after their alignment to the
  model's variants.
"""
import torch
from torch import nn

from dlutil.errors import DataShapeError


def one_hot_alleles(x, n_alleles=2, n_variants=None, owner='network'):
    """Alleles (n, variants) → float one-hot (n, n_alleles, variants); missing (≥ n_alleles)
    gives an all-zero column. A float input of shape (n, n_alleles, variants) passes through."""
    if x.dim() == 3 and x.is_floating_point() and x.shape[1] == n_alleles:
        one_hot = x
    elif x.dim() == 2 and not x.is_floating_point():
        one_hot = torch.stack([x == allele for allele in range(n_alleles)], dim=1).float()
    else:
        raise DataShapeError(f'{owner}: input has shape {tuple(x.shape)} ({x.dtype}) but must be '
                             f'alleles (n, variants) as integers, or one-hot (n, {n_alleles}, '
                             f'variants) as floats')
    if n_variants is not None and one_hot.shape[2] != n_variants:
        raise DataShapeError(f'{owner}: input has {one_hot.shape[2]} variants but the network '
                             f'was built for {n_variants}; align the data to its variants')
    return one_hot


ENCODINGS = ('one_hot', 'likelihood')


def log_likelihood_table(alt_counts, totals, pseudo_count=0.5, min_minor_count=5, shape=None):
    """log P(allele | ancestry) centred over the ancestries, float64 (2, n_classes, variants):
    [0] for REF, [1] for ALT, from ALT-allele counts and allele totals per ancestry and variant
    (each (n_classes, variants)); zeros where the minor allele is counted fewer than
    ``min_minor_count`` times in all. ``shape``: the (n_classes, variants) expected."""
    alt = torch.as_tensor(alt_counts, dtype=torch.float64)
    total = torch.as_tensor(totals, dtype=torch.float64)
    if shape is not None and (tuple(alt.shape) != tuple(shape)
                              or tuple(total.shape) != tuple(shape)):
        raise ValueError(f'allele counts have shapes {tuple(alt.shape)} and '
                         f'{tuple(total.shape)} but must have shape {tuple(shape)} '
                         f'(ancestries, variants)')
    p = (alt + pseudo_count) / (total + 2 * pseudo_count)
    table = torch.stack([torch.log1p(-p), torch.log(p)])  # (2, classes, variants)
    table = table - table.mean(dim=1, keepdim=True)  # uninformative alleles give 0
    alt_all, total_all = alt.sum(dim=0), total.sum(dim=0)
    rare = torch.minimum(alt_all, total_all - alt_all) < min_minor_count
    table[:, :, rare] = 0
    return table


class AlleleEncoding(nn.Module):
    """Alleles (n, variants) → features (n, channels, variants).

    Parameters
    ----------
    n_variants, n_classes: int
    encoding: 'one_hot' or 'likelihood'
    n_alleles: int
        One-hot channels (2: REF, ALT).

    Attributes
    ----------
    channels: int
        ``n_alleles`` (one-hot) or ``n_classes`` (likelihood).
    """

    def __init__(self, n_variants, n_classes, encoding='one_hot', n_alleles=2):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f'encoding must be one of {ENCODINGS}, got {encoding!r}')
        self.encoding, self.n_alleles, self.n_variants = encoding, n_alleles, n_variants
        self.channels = n_classes if encoding == 'likelihood' else n_alleles
        if encoding == 'likelihood':
            # (alleles, classes, variants): log P(allele | ancestry), uniform until fitted
            self.register_buffer('log_likelihood',
                                 torch.full((n_alleles, n_classes, n_variants), -0.6931472))
        self.register_buffer('fitted', torch.tensor(encoding != 'likelihood'))

    def set_frequencies(self, alt_counts, totals, pseudo_count=0.5, min_minor_count=5):
        """Fit the likelihood encoding from ALT-allele counts and allele totals per ancestry
        and variant, each shape=(n_classes, variants); variants whose minor allele is counted
        fewer than ``min_minor_count`` times in all get zeros."""
        if self.encoding != 'likelihood':
            return
        expected = tuple(self.log_likelihood.shape[1:])
        table = log_likelihood_table(alt_counts, totals, pseudo_count, min_minor_count,
                                     expected)
        self.log_likelihood.copy_(table.to(self.log_likelihood.dtype))
        self.fitted.fill_(True)

    def forward(self, x):
        one_hot = one_hot_alleles(x, self.n_alleles, self.n_variants, 'AlleleEncoding')
        if self.encoding == 'one_hot':
            return one_hot
        if not bool(self.fitted):
            raise RuntimeError('the likelihood encoding has no allele frequencies: call '
                               'set_frequencies() with the training panel\'s counts')
        # Σ_allele one_hot[a] · log P(a | class): (n, classes, variants); missing gives 0
        return torch.einsum('nav,acv->ncv', one_hot, self.log_likelihood.to(one_hot.dtype))


