"""Batch generators: iterate over ``(X, Y)`` batches of numpy arrays, one pass per epoch.

``MatrixBatchGenerator`` serves arrays in memory; ``H5pyBatchGenerator`` streams the ``data`` and
``label`` datasets of HDF5 files with bounded memory; ``GenotypeBatchGenerator`` (local ancestry,
:mod:`dlutil.genotypes.generator`) streams haplotypes of a genotype file, admixing them on the
fly. All yield ``(x, y)`` tuples, or ``x`` alone
when there are no labels. ``X`` and ``Y`` may also be dicts of arrays (several inputs or targets).

A generator owns its shuffling RNG (a :class:`numpy.random.Generator`); the search reseeds it per
trial and saves :meth:`MatrixBatchGenerator.get_state` in checkpoints, so a resumed trial sees
exactly the batches an uninterrupted one would have seen.
"""
import contextlib
import glob
import math
import os

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


#: blocks a shuffling window gathers (fewer where one HDF5 chunk is larger than a block)
BLOCKS_PER_WINDOW = 256


class H5pyBatchGenerator(MatrixBatchGenerator):
    """Batches streamed from the ``data`` (X) and ``label`` (Y) datasets of HDF5 files.

    The files matching ``glob_str`` (sorted by name) are concatenated along the first axis.
    Memory stays bounded whatever the files' size: rows are read in contiguous blocks of whole
    HDF5 chunks, about 1/256 of a window each, and shuffling permutes the order of blocks, then the rows within a window
    of blocks about ``buffer_mb`` large, afresh every epoch. A window thus gathers hundreds of
    blocks from all over the files, so a file sorted by class still gives batches with its class
    balance, while every read stays a whole chunk instead of one random row at a time.

    Parameters
    ----------
    glob_str: str
        Glob of HDF5 files (``**`` recurses), or one file's path.
    batch_size: int or None
        As for :class:`MatrixBatchGenerator`.
    shuffle: bool
        Shuffle every epoch (block order, then rows within each window).
    process_x_y: callable or None
        ``process_x_y(x, y) -> (x, y)`` applied to every batch (``y`` is None without labels).
    buffer_mb: float
        Size of the shuffling window in MiB; peak memory is about one window when shuffling
        (every window is read into the same buffer), two when reading in order.
    seed: int
        Seed of the shuffling RNG.
    reverse_complement: bool
        As for :class:`MatrixBatchGenerator`: a random half of the rows reverse-complemented.
    """

    def __init__(self, glob_str, batch_size=None, shuffle=False, process_x_y=None,
                 buffer_mb=64, seed=0, reverse_complement=False):
        import h5py  # deferred: plain in-memory users need no HDF5
        if not isinstance(glob_str, (str, os.PathLike)):
            raise TypeError(f'H5pyBatchGenerator: glob_str must be a path or glob string, '
                            f'got {type(glob_str).__name__}')
        glob_str = os.fspath(glob_str)
        paths = [glob_str] if os.path.isfile(glob_str) else sorted(glob.glob(glob_str,
                                                                            recursive=True))
        paths = [p for p in paths if os.path.isfile(p)]
        if not paths:
            raise FileNotFoundError(f'H5pyBatchGenerator: no file matches {glob_str!r}')
        if process_x_y is not None and not callable(process_x_y):
            raise TypeError('H5pyBatchGenerator: process_x_y must be callable or None')
        self.paths = paths
        self.process_x_y = process_x_y
        sizes, x_shape, y_shape, labelled = [], None, None, []
        for path in paths:
            try:
                with h5py.File(path, 'r') as f:
                    if 'data' not in f:
                        raise ValueError(f'{path}: HDF5 file has no dataset "data" (X); it has '
                                         f'{sorted(f.keys())}')
                    data = f['data']
                    labelled.append('label' in f)
                    if x_shape is None:
                        x_shape, self.x_dtype = data.shape[1:], data.dtype
                        self.chunk_rows = data.chunks[0] if data.chunks else None
                    elif data.shape[1:] != x_shape:
                        raise ValueError(f'{path}: "data" rows have shape {data.shape[1:]} but '
                                         f'{paths[0]} has {x_shape}; all files must match')
                    if 'label' in f:
                        label = f['label']
                        if len(label) != len(data):
                            raise ValueError(f'{path}: "data" has {len(data)} rows but "label" '
                                             f'has {len(label)}')
                        if y_shape is None:
                            y_shape, self.y_dtype = label.shape[1:], label.dtype
                        elif label.shape[1:] != y_shape:
                            raise ValueError(f'{path}: "label" rows have shape '
                                             f'{label.shape[1:]} but earlier files have {y_shape}')
                    sizes.append(len(data))
            except OSError as error:
                raise ValueError(f'{path}: not a readable HDF5 file ({error})') from None
        if any(labelled) and not all(labelled):
            missing = [p for p, has in zip(paths, labelled) if not has]
            raise ValueError(f'H5pyBatchGenerator: some files have a "label" dataset and these '
                             f'do not: {missing}')
        self.has_y = all(labelled)
        self.x_shape, self.y_shape = x_shape, y_shape
        self.sizes = sizes
        self._n = int(sum(sizes))
        self.batch_size = self._check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.buffer_mb = float(buffer_mb)
        self._files = None
        self.reverse_complement = self._check_reverse_complement(
            reverse_complement, np.empty((0,) + tuple(x_shape)))
        self.reseed(seed)

    @property
    def has_labels(self):
        return self.has_y

    ROW_COLUMNS = ('name', 'chrom', 'start', 'end')  # what dlutil.prepare writes

    def row_names(self):
        """The ``name`` (and ``chrom``, ``start``, ``end``) datasets of the files, or None.

        Read from every file in file order, as an unshuffled epoch serves the rows; a column is
        given when every file has it (``dlutil.prepare`` writes ``name``, and for BED input
        ``chrom``, ``start`` and ``end`` of each window).

        Returns
        -------
        dict or None
            ``{column: numpy.ndarray, shape=(n,)}`` (``str`` for name and chrom, ``int64`` for
            start and end); None when the files have no ``name``/``chrom`` datasets.
        """
        import h5py
        columns = {}
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(h5py.File(path, 'r')) for path in self.paths]
            for key in self.ROW_COLUMNS:
                if all(key in f and len(f[key]) == size for f, size in zip(files, self.sizes)):
                    parts = [f[key].asstr()[:] if f[key].dtype.kind in 'OS' else f[key][:]
                             for f in files]
                    columns[key] = np.concatenate(parts) if parts else np.empty(0)
        if not ({'name', 'chrom'} & set(columns)):
            return None
        return {key: (values.astype(str) if key in ('name', 'chrom') else values)
                for key, values in columns.items()}

    # the open files belong to one process: worker processes reopen them
    def __getstate__(self):
        state = dict(self.__dict__)
        state['_files'] = None
        return state

    def _datasets(self):
        import h5py
        if self._files is None or self._files[0] != os.getpid():
            handles = [h5py.File(path, 'r') for path in self.paths]
            self._files = (os.getpid(), handles)
        return [(f['data'], f['label'] if self.has_y else None) for f in self._files[1]]

    def close(self):
        if self._files is not None and self._files[0] == os.getpid():
            for handle in self._files[1]:
                handle.close()
        self._files = None

    def _blocks(self, window_rows):
        """Contiguous ``(file, start, stop)`` row ranges, whole HDF5 chunks, about 1/256 of a
        window each (at least one chunk): a window gathers many blocks from all over the files,
        so its batches carry the files' class balance even when the rows are sorted by class."""
        rows = max(1, window_rows // BLOCKS_PER_WINDOW)
        if self.chunk_rows:
            rows = max(self.chunk_rows, rows // self.chunk_rows * self.chunk_rows)
        return [(i, start, min(start + rows, size))
                for i, size in enumerate(self.sizes) for start in range(0, size, rows)]

    def iter_batches(self, batch_size=None):
        size = batch_size or self.batch_size or max(self._n, 1)
        datasets = self._datasets()
        row_bytes = (int(np.prod(self.x_shape, dtype=np.int64)) * self.x_dtype.itemsize
                     + (int(np.prod(self.y_shape, dtype=np.int64)) * self.y_dtype.itemsize
                        if self.has_y else 0))
        window_rows = max(size, int(self.buffer_mb * 2 ** 20) // max(row_bytes, 1))
        blocks = self._blocks(window_rows)
        self.epoch += 1
        if self.shuffle:
            blocks = [blocks[i] for i in self.rng.permutation(len(blocks))]
        carry_x = carry_y = None
        buffer_x = buffer_y = None
        i = 0
        while i < len(blocks):
            # gather blocks until the window is full, then read them into one buffer
            take, rows = [], 0 if carry_x is None else len(carry_x)
            while i < len(blocks) and (not take or rows < window_rows):
                take.append(blocks[i])
                rows += blocks[i][2] - blocks[i][1]
                i += 1
            if self.shuffle:
                # Shuffled batches are gathered from the window (fancy indexing copies), so
                # every window of the epoch reuses one buffer: a fresh window-sized array per
                # window costs more in page faults than the reading itself.
                if buffer_x is None or len(buffer_x) < rows:
                    buffer_x = np.empty((rows + size,) + self.x_shape, self.x_dtype)
                    buffer_y = (np.empty((rows + size,) + self.y_shape, self.y_dtype)
                                if self.has_y else None)
                x = buffer_x[:rows]
                y = buffer_y[:rows] if self.has_y else None
            else:
                # in-order batches are views of the window, so each window is a new array
                x = np.empty((rows,) + self.x_shape, self.x_dtype)
                y = np.empty((rows,) + self.y_shape, self.y_dtype) if self.has_y else None
            offset = 0
            if carry_x is not None:
                offset = len(carry_x)
                x[:offset] = carry_x
                if y is not None:
                    y[:offset] = carry_y
            for file_index, start, stop in take:
                data, label = datasets[file_index]
                data.read_direct(x, np.s_[start:stop], np.s_[offset:offset + stop - start])
                if y is not None:
                    label.read_direct(y, np.s_[start:stop], np.s_[offset:offset + stop - start])
                offset += stop - start
            # a partial batch is carried into the next window; only the last batch is short
            full = rows if i == len(blocks) else rows // size * size
            if self.shuffle:
                order = self.rng.permutation(rows)
                for start in range(0, full, size):
                    index = order[start:start + size]
                    yield self._batch(x[index], y[index] if y is not None else None)
                # copies (fancy indexing), taken before the buffer is overwritten
                carry_x = x[order[full:]] if full < rows else None
                carry_y = y[order[full:]] if (y is not None and full < rows) else None
            else:
                for start in range(0, full, size):
                    yield self._batch(x[start:start + size],
                                      y[start:start + size] if y is not None else None)
                # copies, so the window itself can be freed before the next one is read
                carry_x = x[full:].copy() if full < rows else None
                carry_y = y[full:].copy() if (y is not None and full < rows) else None

    def _batch(self, x, y):
        x = self._augment(x)
        if self.process_x_y is not None:
            x, y = self.process_x_y(x, y)
        return x if y is None else (x, y)


def __getattr__(name):  # GenotypeBatchGenerator: imported on first use (it imports this module)
    if name == 'GenotypeBatchGenerator':
        from dlutil.genotypes.generator import GenotypeBatchGenerator
        return GenotypeBatchGenerator
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


from dlutil.simulation import SimulationBatchGenerator, SimulationError  # noqa: E402,F401  (simulations on the fly; at the end: it imports this module)
