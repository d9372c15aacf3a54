"""Alleles as the networks take them: one-hot channels per variant."""
import torch

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
