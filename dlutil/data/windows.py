"""Batches from blocks of rows, shuffled within windows of bounded memory.

The one chunk-window reader of the package: :class:`~dlutil.data.hdf5.H5pyBatchGenerator`
(sequences) and :class:`~dlutil.genotypes.generator.GenotypeBatchGenerator` (haplotypes) both
stream their HDF5 files through :func:`window_batches`. A file is cut into blocks of whole HDF5
chunks; shuffling permutes the blocks, a window gathers consecutive blocks of that order and is
read at once (each read a whole chunk, never one random row), and its rows are permuted. The rows
left over after a window's last full batch are carried into the next window, so only the last
batch of a pass is short. Each reader says how a window is read and how large one is.
"""
import numpy as np


def _rows(block):
    return block[-1] - block[-2]


def window_batches(blocks, read, batch_size, window, rng=None, shuffle=False, weight=_rows,
                   carry_counts=True):
    """Yield ``(x, y)`` batches of every row of ``blocks`` once, with at most about ``window``
    rows (or blocks) in memory.

    Parameters
    ----------
    blocks: list of tuple
        Contiguous row ranges whose last two entries are ``start, stop``, in file order.
    read: callable
        ``read(take, carry)`` → ``(x, y)``: the rows of the blocks ``take``, after the rows of
        ``carry`` (``None``, or an ``(x, y)`` pair carried from the last window); ``y`` may be
        ``None``. Its arrays may be reused from window to window: a carry is always a copy.
    batch_size: int
    window: int
        How much one window holds, in the units of ``weight``.
    rng: numpy.random.Generator
        Permutes the blocks, then each window's rows, when ``shuffle``.
    weight: callable
        A block's share of a window (default: its rows).
    carry_counts: bool
        Whether the rows carried into a window count towards ``window``.

    In order (``shuffle=False``), batches are views of the window's arrays.
    """
    if shuffle:
        blocks = [blocks[i] for i in rng.permutation(len(blocks))]
    carry, i = None, 0
    while i < len(blocks):
        take, filled = [], len(carry[0]) if carry is not None and carry_counts else 0
        while i < len(blocks) and (not take or filled < window):
            take.append(blocks[i])
            filled += weight(blocks[i])
            i += 1
        x, y = read(take, carry)
        rows = len(x)
        full = rows if i == len(blocks) else rows // batch_size * batch_size
        order = rng.permutation(rows) if shuffle else np.arange(rows)
        for start in range(0, full, batch_size):
            if shuffle:
                index = order[start:start + batch_size]
            else:
                index = slice(start, start + batch_size)
            yield x[index], (y[index] if y is not None else None)
        rest = order[full:]
        # copies (fancy indexing), taken before ``read`` may overwrite its arrays
        carry = (x[rest], y[rest] if y is not None else None) if len(rest) else None
