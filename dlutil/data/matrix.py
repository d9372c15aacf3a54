"""The batch generator of arrays in memory, and the base of every other batch generator.

A batch generator iterates over ``(X, Y)`` batches of numpy arrays, one pass per epoch:
``MatrixBatchGenerator`` serves arrays in memory; ``H5pyBatchGenerator`` (:mod:`dlutil.data.hdf5`)
streams the ``data`` and ``label`` datasets of HDF5 files with bounded memory;
``GenotypeBatchGenerator`` (local ancestry, :mod:`dlutil.genotypes.generator`) streams haplotypes
of a genotype file, admixing them on the fly. All yield ``(x, y)`` tuples, or ``x`` alone
when there are no labels. ``X`` and ``Y`` may also be dicts of arrays (several inputs or targets).

A generator owns its shuffling RNG (a :class:`numpy.random.Generator`); the search reseeds it per
trial and saves :meth:`MatrixBatchGenerator.get_state` in checkpoints, so a resumed trial sees
exactly the batches an uninterrupted one would have seen.
"""
import math

import numpy as np

from dlutil.sequences.onehot import reverse_complement


def _take(tree, index):
    """Index every array of ``tree`` (an array or a dict of arrays) with ``index``."""
    if isinstance(tree, dict):
        return {key: value[index] for key, value in tree.items()}
    return tree[index]


def _length(tree, name):
    if isinstance(tree, dict):
        lengths = {key: len(value) for key, value in tree.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f'{name} is a dict of arrays with different lengths: {lengths}')
        return next(iter(lengths.values()))
    if not hasattr(tree, '__len__') or not hasattr(tree, '__getitem__'):
        raise TypeError(f'{name} must be a numpy array or a dict of arrays, '
                        f'got {type(tree).__name__}')
    return len(tree)


class MatrixBatchGenerator:
    """Batches of in-memory arrays.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, ...), or dict of such arrays
        Inputs.
    Y: numpy.ndarray, shape=(n, ...), dict of arrays, or None
        Labels; None for prediction data.
    batch_size: int or None
        Rows per batch. None means one batch of everything for plain iteration; evaluation
        then runs in batches of the ``--batch-size`` instead, so memory stays bounded.
    shuffle: bool
        Serve rows in a new random order every epoch.
    seed: int
        Seed of the shuffling RNG (the search reseeds it per trial).
    reverse_complement: bool
        Training augmentation for one-hot DNA in ACGT order, shape=(n, 4, length) or
        (n, 4, 1, length): every row is served as its reverse complement with probability 1/2,
        drawn afresh each epoch.
    names: sequence of str, shape=(n,), or None
        Optional names of the rows (e.g. sequence ids). ``-p`` writes them beside the
        predictions; see :meth:`row_names`.
    """

    def __init__(self, X, Y=None, batch_size=None, shuffle=False, seed=0,
                 reverse_complement=False, names=None):
        n = _length(X, 'X')
        if Y is not None and _length(Y, 'Y') != n:
            raise ValueError(f'X has {n} rows but Y has {_length(Y, "Y")}; they must match')
        if names is not None and len(names) != n:
            raise ValueError(f'X has {n} rows but names has {len(names)}; they must match')
        self.names = None if names is None else [str(name) for name in names]
        self.X, self.Y = X, Y
        self._n = n
        self.batch_size = self._check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.reverse_complement = self._check_reverse_complement(reverse_complement, X)
        self.reseed(seed)

    @staticmethod
    def _check_reverse_complement(on, X):
        if on and (isinstance(X, dict) or getattr(X, 'ndim', 0) not in (3, 4)
                   or X.shape[1] != 4):
            shape = 'a dict' if isinstance(X, dict) else getattr(X, 'shape', None)
            raise ValueError(f'reverse_complement needs one-hot DNA of shape (n, 4, length) or '
                             f'(n, 4, 1, length), got {shape}')
        return bool(on)

    def _augment(self, x):
        """Reverse-complement a random half of the rows (``reverse_complement=True``)."""
        if not self.reverse_complement:
            return x
        flip = self.rng.random(len(x)) < 0.5
        x = np.array(x, copy=True)
        x[flip] = reverse_complement(x[flip])
        return x

    @staticmethod
    def _check_batch_size(batch_size):
        if batch_size is None:
            return None
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer or None, got {batch_size!r}')
        return int(batch_size)

    # -- what the training loop uses ------------------------------------------------------------
    @property
    def n_samples(self):
        """Number of rows in one epoch."""
        return self._n

    @property
    def has_labels(self):
        return self.Y is not None

    def __len__(self):
        """Batches per epoch at ``batch_size``."""
        return self.num_batches(self.batch_size)

    def num_batches(self, batch_size=None):
        size = batch_size or self.batch_size or max(self.n_samples, 1)
        return math.ceil(self.n_samples / size)

    def __iter__(self):
        return self.iter_batches(self.batch_size)

    def iter_batches(self, batch_size=None):
        """One epoch of batches of ``batch_size`` rows (default: ``self.batch_size``, else all).

        Subclasses override this to change how batches are made.
        """
        size = batch_size or self.batch_size or max(self._n, 1)
        order = self._epoch_order()
        for start in range(0, self._n, size):
            index = slice(start, start + size) if order is None else order[start:start + size]
            x = self._augment(_take(self.X, index))
            if self.Y is None:
                yield x
            else:
                yield x, _take(self.Y, index)

    def _epoch_order(self):
        self.epoch += 1
        return self.rng.permutation(self._n) if self.shuffle else None

    def row_names(self):
        """The names of the rows, in the order an unshuffled epoch serves them, or None.

        Optional for a generator (the prediction step falls back to row numbers without it).

        Returns
        -------
        dict or None
            ``{'name': numpy.ndarray of str, shape=(n,)}`` from ``names`` (also when the
            attribute is set after construction); None without names.
        """
        names = getattr(self, 'names', None)
        return None if names is None else {'name': np.asarray(names, dtype=str)}

    # -- RNG state, for reproducible trials and exact resume ------------------------------------
    def reseed(self, seed):
        """Restart the shuffling RNG from ``seed``."""
        self.rng = np.random.default_rng(seed)
        self.epoch = 0

    def get_state(self):
        """The shuffling state as plain data (saved in checkpoints)."""
        return {'rng': self.rng.bit_generator.state, 'epoch': self.epoch}

    def set_state(self, state):
        self.rng.bit_generator.state = state['rng']
        self.epoch = state['epoch']

    @classmethod
    def get_train_val_generator(cls, X, Y, val_ratio, batch_size, seed=0):
        """Split ``(X, Y)`` at random into a shuffled training and a validation generator.

        Parameters
        ----------
        val_ratio: float
            Fraction of rows for validation, strictly between 0 and 1.
        seed: int
            Seed of the split, fixed by default so every trial validates on the same rows.

        Returns
        -------
        (train, val): tuple of MatrixBatchGenerator
        """
        if not isinstance(val_ratio, (int, float)) or not 0 < val_ratio < 1:
            raise ValueError(f'val_ratio must be a number strictly between 0 and 1, '
                             f'got {val_ratio!r}')
        n = _length(X, 'X')
        n_val = int(round(n * val_ratio))
        if n_val < 1 or n_val >= n:
            raise ValueError(f'val_ratio={val_ratio} of {n} rows leaves an empty training or '
                             f'validation set')
        order = np.random.default_rng(seed).permutation(n)
        val_index, train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
        train = cls(_take(X, train_index), _take(Y, train_index), batch_size, shuffle=True)
        val = cls(_take(X, val_index), _take(Y, val_index))
        return train, val
