"""Aligning query variants to a model's variants by position.

A model labels the variants it was trained on. A query (another VCF, another array) keeps the
variants the model has, in the model's order; the variants the model lacks are dropped, and the
variants the query lacks are filled with :data:`~.h5.MISSING` (labels with :data:`~.h5.IGNORE`).

Positions mean something on one chromosome only, and a model calls nothing useful from a query
that lacks most of its variants: :func:`check_query` refuses a query on another chromosome, and
one that holds fewer than :data:`MIN_SHARED` of the model's variants.
"""
import numpy as np

from dlutil.genotypes.h5 import MISSING
from dlutil.errors import InputError

#: the least fraction of the model's variants a query must hold to be called
MIN_SHARED = 0.5


class Alignment:
    """Where each model variant is in the query.

    Parameters
    ----------
    query_positions, model_positions: array of int
        Strictly increasing positions.

    Attributes
    ----------
    index: numpy.ndarray, int64, shape=(model variants,)
        The query column of each model variant, -1 where the query lacks it.
    counts: dict
        ``model_variants``, ``query_variants``, ``shared``, ``dropped`` (query variants the model
        lacks) and ``filled`` (model variants the query lacks, filled as missing).
    """

    def __init__(self, query_positions, model_positions):
        query = np.asarray(query_positions, dtype=np.int64)
        model = np.asarray(model_positions, dtype=np.int64)
        for name, p in (('query', query), ('model', model)):
            if p.ndim != 1 or np.any(np.diff(p) <= 0):
                raise ValueError(f'{name} positions must be a strictly increasing 1-D array')
        where = np.searchsorted(query, model)
        found = where < len(query)
        found[found] = query[where[found]] == model[found]
        self.index = np.where(found, where, -1).astype(np.int64)
        shared = int(found.sum())
        self.identity = shared == len(model) == len(query)
        self.counts = {'model_variants': len(model), 'query_variants': len(query),
                       'shared': shared, 'dropped': len(query) - shared,
                       'filled': len(model) - shared}

    def __repr__(self):
        c = self.counts
        return (f'{c["shared"]} of the model\'s {c["model_variants"]} variants are in the query; '
                f'{c["dropped"]} query variants dropped, {c["filled"]} filled as missing')

    def apply(self, rows, fill=MISSING):
        """Columns of query ``rows`` (shape=(n, query variants)) in the model's order.

        Returns
        -------
        numpy.ndarray, shape=(n, model variants), ``fill`` where the query lacks the variant
        """
        if self.identity:
            return rows
        out = np.full((rows.shape[0], len(self.index)), fill,
                      dtype=np.result_type(rows.dtype, np.min_scalar_type(fill)))
        have = self.index >= 0
        out[:, have] = rows[:, self.index[have]]
        return out


def same_chromosome(a, b):
    """Whether two chromosome names mean the same one (``chr22`` and ``22`` do)."""
    def plain(name):
        name = str(name)
        return name[3:] if name.lower().startswith('chr') else name
    return plain(a) == plain(b)


def check_query(path, query_chromosome, model_chromosome, alignment, min_shared=MIN_SHARED):
    """Refuse a query the model cannot call: another chromosome, or too few shared variants.

    Parameters
    ----------
    path: str
        The query, for the message.
    query_chromosome, model_chromosome: str
        ``chr22`` and ``22`` are taken as the same chromosome.
    alignment: Alignment
        The query's variants aligned to the model's.
    min_shared: float
        The least fraction of the model's variants the query must hold.

    Raises
    ------
    InputError
        Naming the file, both chromosomes or the counts, and what to do.
    """
    if not same_chromosome(query_chromosome, model_chromosome):
        raise InputError(f'{path}: the query is on chromosome {query_chromosome!r} but the model '
                         f'was trained on chromosome {model_chromosome!r}; train a model on a '
                         f'panel of chromosome {query_chromosome!r} to call it')
    c = alignment.counts
    if c['shared'] < min_shared * c['model_variants']:
        raise InputError(f'{path}: the query holds {c["shared"]} of the model\'s '
                         f'{c["model_variants"]} variants ({c["shared"] / c["model_variants"]:.1%}'
                         f'), fewer than the {min_shared:.0%} needed to call it; are the '
                         f'positions on the panel\'s genome build (1-based)? Otherwise train on '
                         f'the variants the query and the panel share')


__all__ = ['Alignment', 'check_query', 'same_chromosome', 'MIN_SHARED']
