"""Batches of haplotypes from a genotype file, with optional admixture simulated on the fly.

:class:`GenotypeBatchGenerator` streams rows (haplotypes) of a genotype HDF5 file with bounded
memory: contiguous blocks of rows aligned to the HDF5 chunks, in a new random order every epoch,
shuffled again within a window of about ``buffer_mb``; the shuffling RNG is its own and its state
is checkpointed (:meth:`get_state`), so a resumed trial sees the batches an uninterrupted one would
have. :func:`split_panel` holds out reference samples and :func:`admixed_validation` turns them
into a fixed validation set of admixed haplotypes, built once so that every trial is compared on
the same haplotypes.
"""
import os

import numpy as np

from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.data.windows import window_batches
from dlutil.genotypes.admixture import Admixer
from dlutil.genotypes.align import Alignment
from dlutil.genotypes.h5 import IGNORE, open_genotypes


def label_map(file_ancestries, model_ancestries, path):
    """Indices of the file's ancestry names among the model's (labels are matched by name)."""
    unknown = [a for a in file_ancestries if a not in model_ancestries]
    if unknown:
        raise ValueError(f'{path}: labels name ancestries {unknown} the model does not know '
                         f'(it knows {list(model_ancestries)})')
    return np.array([list(model_ancestries).index(a) for a in file_ancestries], np.int64)


class GenotypeBatchGenerator(MatrixBatchGenerator):
    """``(x, y)`` batches of a genotype file: alleles uint8 (n, variants), labels int16 (n, variants).

    Parameters
    ----------
    path: str
        A genotype HDF5 file (see :mod:`dlutil.genotypes.h5`).
    batch_size: int or None
        Haplotypes read per batch (None: all). With ``admix`` a batch grows by the admixed
        haplotypes appended to it (deepLAI: ``batch_size + 2 * (batch_size // 3)`` rows).
    rows: array of int or None
        The haplotypes to serve (None: all), e.g. the training part of :func:`split_panel`.
    shuffle: bool
        Shuffle every epoch (block order, then rows within each window).
    admix: Admixer, True or None
        Simulate admixture in every batch (True: deepLAI's defaults).
    positions: array of int or None
        The model's variant positions: the file's variants are aligned to them
        (:class:`~dlutil.genotypes.align.Alignment`, counts in ``self.alignment``).
    ancestries: list of str or None
        The model's ancestry names: the file's labels are mapped to them by name.
    labels: bool
        Serve labels when the file has them (False: ``x`` alone, for prediction).
    buffer_mb: float
        Memory of one shuffling window.
    seed: int
        Seed of the RNG that shuffles and admixes.
    passes: int
        Passes over the rows in one epoch, each shuffled and admixed afresh: an epoch of a
        fixed number of haplotypes, whatever the panel's size.
    """

    def __init__(self, path, batch_size=None, rows=None, shuffle=False, admix=None,
                 positions=None, ancestries=None, labels=True, buffer_mb=64, seed=0, passes=1):
        self.info = info = open_genotypes(path)
        self.path = info.path
        self.rows = (np.arange(info.n_haplotypes) if rows is None
                     else np.unique(np.asarray(rows, dtype=np.int64)))
        if len(self.rows) == 0 or self.rows[0] < 0 or self.rows[-1] >= info.n_haplotypes:
            raise ValueError(f'{path}: rows must be a non-empty selection of its '
                             f'{info.n_haplotypes} haplotypes')
        self.admix = Admixer() if admix is True else (admix or None)
        if self.admix is not None and info.label_kind is None:
            raise ValueError(f'{path}: admixture simulation needs labelled haplotypes')
        self.alignment = Alignment(info.positions, positions) if positions is not None else None
        self.n_variants = (len(positions) if positions is not None else info.n_variants)
        self.labelled = bool(labels) and info.label_kind is not None
        self.remap = None
        if self.labelled:
            self.remap = (label_map(info.ancestries, ancestries, path) if ancestries is not None
                          else np.arange(len(info.ancestries)))
        self.X = self.Y = None
        self._n = len(self.rows)
        self.batch_size = self._check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        self.reverse_complement = False
        self.buffer_mb = float(buffer_mb)
        if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
            raise ValueError(f'passes must be a positive integer, got {passes!r}')
        self.passes = int(passes)
        self._file = None
        self.reseed(seed)

    @property
    def n_samples(self):
        """Founder haplotypes in one epoch (``passes`` times the rows)."""
        return self._n * self.passes

    @property
    def has_labels(self):
        return self.labelled

    @property
    def ancestries(self):
        return self.info.ancestries

    def __getstate__(self):  # open files belong to one process
        state = dict(self.__dict__)
        state['_file'] = None
        return state

    def _datasets(self):
        import h5py
        if self._file is None or self._file[0] != os.getpid():
            self._file = (os.getpid(), h5py.File(self.path, 'r'))
        f = self._file[1]
        return f['data'], (f['label'] if self.labelled else None)

    def close(self):
        if self._file is not None:
            self._file[1].close()
        self._file = None

    def _blocks(self):
        """Contiguous row ranges of one HDF5 chunk each that hold selected rows: (start, stop)."""
        data, _ = self._datasets()
        step = data.chunks[0] if data.chunks else 64
        starts = np.unique(self.rows // step) * step
        return [(int(s), int(min(s + step, self.info.n_haplotypes))) for s in starts]

    def _read(self, blocks):
        """The selected rows of ``blocks``: alleles uint8, labels int16 per variant (or None)."""
        data, label = self._datasets()
        xs, ys = [], []
        for start, stop in blocks:
            keep = self.rows[(self.rows >= start) & (self.rows < stop)] - start
            xs.append(data[start:stop][keep])
            if label is not None:
                ys.append(label[start:stop][keep])
        x = np.concatenate(xs)
        if self.alignment is not None:
            x = self.alignment.apply(x)
        if label is None:
            return x, None
        # int16: labels of a 500k-variant batch stay small (the loss casts them to long)
        y = self.remap[np.concatenate(ys).astype(np.int64)].astype(np.int16)
        if y.ndim == 1:
            y = np.repeat(y[:, None], self.n_variants, axis=1)
        elif self.alignment is not None:
            y = self.alignment.apply(y, fill=IGNORE)
        return x, y

    def iter_batches(self, batch_size=None):
        for _ in range(self.passes):
            yield from self._one_pass(batch_size)

    def _one_pass(self, batch_size=None):
        size = batch_size or self.batch_size or max(self._n, 1)
        blocks = self._blocks()
        per_block = max(1, self._n // max(len(blocks), 1))
        row_bytes = self.n_variants * (3 if self.labelled else 1)
        window_blocks = max(1, int(self.buffer_mb * 2 ** 20) // max(row_bytes * per_block, 1))
        window_blocks = max(window_blocks, -(-size // per_block))
        self.epoch += 1

        def read(take, carry):
            x, y = self._read(take)
            if carry is None:
                return x, y
            return (np.concatenate([carry[0], x]),
                    np.concatenate([carry[1], y]) if y is not None else None)

        # a window is a number of blocks, the carried rows not counted
        for x, y in window_batches(blocks, read, size, window_blocks, self.rng, self.shuffle,
                                   weight=lambda block: 1, carry_counts=False):
            yield self._batch(x, y)

    def _batch(self, x, y):
        if y is None:
            return x
        if self.admix is not None:
            x, y = self.admix(x, y, self.rng)
        return x, y

    def read_all(self):
        """All selected rows at once: ``(x, y)`` (y None without labels), in file order."""
        return self._read(self._blocks())


def split_panel(info, val_fraction=0.2, seed=0):
    """Hold out whole samples (both haplotypes), ``val_fraction`` of each ancestry.

    Parameters
    ----------
    info: GenotypeInfo
        A reference panel (one label per haplotype).
    val_fraction: float
    seed: int

    Returns
    -------
    (train_rows, val_rows): int64 arrays of haplotype indices; an ancestry with a single sample
    is used for training only
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    labels = info.haplotype_labels()
    sample_of = [name.rsplit('_', 1)[0] for name in info.samples]
    samples = list(dict.fromkeys(sample_of))
    rows_of = {s: [] for s in samples}
    for row, s in enumerate(sample_of):
        rows_of[s].append(row)
    rng = np.random.default_rng(seed)
    val = []
    for ancestry in range(len(info.ancestries)):
        members = [s for s in samples if labels[rows_of[s][0]] == ancestry]
        if len(members) < 2:
            continue
        n_val = min(len(members) - 1, max(1, int(round(val_fraction * len(members)))))
        val += [members[i] for i in rng.permutation(len(members))[:n_val]]
    val_rows = np.sort([r for s in val for r in rows_of[s]]).astype(np.int64)
    train_rows = np.setdiff1d(np.arange(info.n_haplotypes), val_rows)
    return train_rows, val_rows


def admixed_validation(path, rows, n_haplotypes=None, admix=None, seed=0):
    """A fixed validation set of admixed haplotypes stitched from held-out reference haplotypes.

    Parameters
    ----------
    path: str
        The reference panel.
    rows: array of int
        Held-out haplotypes (founders).
    n_haplotypes: int or None
        Admixed haplotypes to make (None: twice the founders).
    admix: Admixer or None
        The simulation (None: deepLAI's defaults).
    seed: int
        Fixed, so every trial validates on the same haplotypes.

    Returns
    -------
    MatrixBatchGenerator over ``x`` uint8 (n, variants), ``y`` int16 (n, variants)
    """
    founders = GenotypeBatchGenerator(path, rows=rows)
    x, y = founders.read_all()
    founders.close()
    admix = admix or Admixer()
    n_haplotypes = n_haplotypes or 2 * len(x)
    rng = np.random.default_rng(seed)
    made_x, made_y, made = [], [], 0
    while made < n_haplotypes:
        bx, by = admix(x, y, rng)
        made_x.append(bx[len(x):])
        made_y.append(by[len(x):])
        made += len(bx) - len(x)
        if len(bx) == len(x):
            raise ValueError(f'{path}: {len(x)} held-out haplotypes are too few to admix')
    return MatrixBatchGenerator(np.concatenate(made_x)[:n_haplotypes],
                                np.concatenate(made_y)[:n_haplotypes])


__all__ = ['GenotypeBatchGenerator', 'split_panel', 'admixed_validation', 'label_map']
