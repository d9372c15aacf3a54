"""Rewriting an HDF5 file's rows in a seeded random order, with bounded memory.

``prepare`` writes rows in input order, so ``--one-per-class`` would leave ``train.h5`` sorted by
class; a reader that shuffles within a window would then see windows of one class. The training
file is therefore rewritten in a uniformly random order by a two-pass bucket shuffle: each row's
place in the output is drawn (a permutation), pass 1 scatters the rows into buckets of
consecutive output places (an intermediate file, written in runs), and pass 2 reads one bucket at
a time, orders it, and appends it to the output. Memory: one bucket (``buffer_mb``) plus three
integers per row; the file is read and written twice.
"""
import h5py
import numpy as np

from dlutil import files, h5output


def _row_bytes(dataset):
    item = 64 if dataset.dtype.kind == 'O' else dataset.dtype.itemsize  # strings: a guess
    return item * int(np.prod(dataset.shape[1:], dtype=np.int64))


def _like(out, name, dataset, compression=True):
    return out.create_dataset(
        name, shape=dataset.shape, dtype=dataset.dtype, chunks=dataset.chunks,
        maxshape=dataset.maxshape,
        compression=dataset.compression if compression else None,
        compression_opts=dataset.compression_opts if compression else None)


def shuffle_rows(path, target, seed, buffer_mb=64):
    """Write every dataset of ``path`` (all of one length, rows along the first axis) to
    ``target`` with its rows in one random order drawn from ``seed``; attributes are kept.

    Parameters
    ----------
    path: str
        An HDF5 file whose top-level datasets all have ``n`` rows.
    target: h5output.H5Output
        The output, open (a temporary file of the caller's; an intermediate file of the same
        size is written beside it and removed).
    seed: int or sequence of int
        Seed of :func:`numpy.random.default_rng`.
    buffer_mb: float
        Rows held in memory at once, in MiB.

    Returns
    -------
    numpy.ndarray, shape=(n,): the output place of each input row
    """
    with h5py.File(path, 'r') as src:
        names = [k for k, v in src.items() if isinstance(v, h5py.Dataset)]
        n = len(src[names[0]]) if names else 0
        if any(len(src[k]) != n for k in names):
            raise ValueError(f'{path}: datasets of different lengths cannot be shuffled')
        index = np.int32 if n < 2 ** 31 else np.int64
        dest = np.random.default_rng(seed).permutation(n).astype(index)
        out = target.file
        out.attrs.update(dict(src.attrs))
        if n < 2:
            for name in names:
                src.copy(src[name], out, name)
            return dest
        width = max(1, int(buffer_mb * 2 ** 20) // max(1, sum(_row_bytes(src[k])
                                                               for k in names)))
        order = np.argsort(dest // width, kind='stable')  # rows grouped by bucket
        place = np.empty(n, index)  # each row's place in the intermediate file
        place[order] = np.arange(n, dtype=index)
        with files.scratch_path(target.path + '.shuffle') as tmp, \
                h5output.H5Output(tmp, target.path) as scratch:
            mid = scratch.file
            for start in range(0, n, width):  # pass 1: scatter into buckets
                stop = min(n, start + width)
                rows = np.argsort(place[start:stop])
                targets = place[start:stop][rows]
                breaks = np.flatnonzero(np.diff(targets) != 1) + 1
                for name in names:
                    values = src[name][start:stop][rows]
                    block = mid[name] if name in mid else _like(mid, name, src[name], False)
                    for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
                        block[targets[a]:targets[a] + b - a] = values[a:b]
                scratch.check()
            for name in names:
                _like(out, name, src[name]).attrs.update(dict(src[name].attrs))
            for start in range(0, n, width):  # pass 2: order each bucket
                stop = min(n, start + width)
                within = dest[order[start:stop]] - start
                for name in names:
                    bucket = mid[name][start:stop]
                    values = np.empty_like(bucket)
                    values[within] = bucket
                    out[name][start:stop] = values
                target.check()
    return dest
