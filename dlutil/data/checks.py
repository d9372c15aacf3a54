"""Checks of the values a batch generator yields: re-iterable, not empty, labelled, finite numbers.

Each raises a :class:`dlutil.errors.DataShapeError` (a fault of the data: the search stops) whose
message names the generator, the files it reads, and the value.
"""
import numpy as np
import torch

from dlutil.data.batches import iterate, split_batch
from dlutil.errors import DataShapeError, OneShotGeneratorError


def _where(generator):
    """The files a generator reads, for messages (``H5pyBatchGenerator.paths``)."""
    paths = getattr(generator, 'paths', None)
    if not paths:
        return ''
    shown = ', '.join(map(str, paths[:3])) + (f' and {len(paths) - 3} more' if len(paths) > 3
                                               else '')
    return f' (reading {shown})'


def check_reiterable(name, generator):
    """Refuse a one-shot iterator (a Python generator function's result, ``iter(list)``)."""
    if hasattr(generator, '__next__') and iter(generator) is generator:
        raise OneShotGeneratorError(
            f'the {name} is a one-shot iterator ({type(generator).__name__}): it is exhausted '
            f'after one epoch, so every later epoch would train on nothing. Return a re-iterable '
            f'object instead: batch_generator.MatrixBatchGenerator / H5pyBatchGenerator, a list '
            f'of batches, or a class whose __iter__ starts a new pass')


def first_batch(name, generator, labelled, batch_size=None):
    """``(x, y)`` of the generator's first batch, its arrays checked; y is None unlabelled.

    ``batch_size`` serves a generator of ``batch_size=None`` in batches, as evaluation does.
    """
    if labelled:
        check_reiterable(name, generator)
    batch = next(iterate(generator, batch_size), None)
    if batch is None:
        raise DataShapeError(f'the {name}{_where(generator)} yielded no batches: the data is '
                             f'empty')
    x, y = split_batch(batch)
    if labelled and y is None:
        raise DataShapeError(f'the {name}{_where(generator)} yields batches without labels '
                             f'(for an HDF5 file: no "label" dataset); training and testing need '
                             f'(x, y) batches')
    _check_values(name, generator, 'inputs', x)
    if y is not None:
        _check_values(name, generator, 'labels', y)
    return x, y


def scan_finite(name, generator):
    """Look through every batch for NaN or inf (after a diverged epoch: was it the data?)."""
    for batch in generator:
        x, y = split_batch(batch)
        _check_values(name, generator, 'inputs', x, 'a batch')
        if y is not None:
            _check_values(name, generator, 'labels', y, 'a batch')


def leaves(tree, key=''):
    """``(key, value)`` for every value of a nest of dicts, lists and tuples; ``key`` as
    ``['x'][0]``."""
    if isinstance(tree, dict):
        for k, value in tree.items():
            yield from leaves(value, f'{key}[{k!r}]')
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from leaves(value, f'{key}[{i}]')
    else:
        yield key, tree


def _check_values(name, generator, what, tree, batch='its first batch'):
    for key, value in leaves(tree):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else \
            np.asarray(value)
        if array.dtype.kind not in 'biuf':
            raise DataShapeError(
                f'the {name}{_where(generator)} yields {what}{key} of dtype {array.dtype}, not '
                f'numbers (a header row in a CSV file, or a text column?)')
        if array.dtype.kind == 'f' and not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            value = array[tuple(bad)]
            raise DataShapeError(
                f'the {name}{_where(generator)} yields {what}{key} with {value} at index '
                f'{tuple(int(i) for i in bad)} of {batch}: NaN or inf in the data is a '
                f'data fault (a header row in a CSV file read as numbers, a missing value?), '
                f'not a configuration diverging')
