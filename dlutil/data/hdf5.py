"""Streaming the ``data`` and ``label`` datasets of HDF5 files in batches, with bounded memory."""
import contextlib
import glob
import os

import numpy as np

from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.data.windows import window_batches


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
        self.epoch += 1
        buffers = {}

        def read(take, carry):
            rows = sum(stop - start for _, start, stop in take) + (len(carry[0]) if carry else 0)
            if self.shuffle:
                # Shuffled batches are gathered from the window (fancy indexing copies), so
                # every window of the epoch reuses one buffer: a fresh window-sized array per
                # window costs more in page faults than the reading itself.
                if 'x' not in buffers or len(buffers['x']) < rows:
                    buffers['x'] = np.empty((rows + size,) + self.x_shape, self.x_dtype)
                    buffers['y'] = (np.empty((rows + size,) + self.y_shape, self.y_dtype)
                                    if self.has_y else None)
                x = buffers['x'][:rows]
                y = buffers['y'][:rows] if self.has_y else None
            else:
                # in-order batches are views of the window, so each window is a new array
                x = np.empty((rows,) + self.x_shape, self.x_dtype)
                y = np.empty((rows,) + self.y_shape, self.y_dtype) if self.has_y else None
            offset = 0
            if carry is not None:
                offset = len(carry[0])
                x[:offset] = carry[0]
                if y is not None:
                    y[:offset] = carry[1]
            for file_index, start, stop in take:
                data, label = datasets[file_index]
                data.read_direct(x, np.s_[start:stop], np.s_[offset:offset + stop - start])
                if y is not None:
                    label.read_direct(y, np.s_[start:stop], np.s_[offset:offset + stop - start])
                offset += stop - start
            return x, y

        for x, y in window_batches(self._blocks(window_rows), read, size, window_rows, self.rng,
                                   self.shuffle):
            yield self._batch(x, y)

    def _batch(self, x, y):
        x = self._augment(x)
        if self.process_x_y is not None:
            x, y = self.process_x_y(x, y)
        return x if y is None else (x, y)
