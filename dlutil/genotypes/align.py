"""Aligning query variants to a model's variants by position.

A model labels the variants it was trained on. A query (another VCF, another array) keeps the
variants the model has, in the model's order; the variants the model lacks are dropped, and the
variants the query lacks are filled with :data:`~.h5.MISSING` (labels with :data:`~.h5.IGNORE`).
"""
import numpy as np

from dlutil.genotypes.h5 import MISSING


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


__all__ = ['Alignment']
