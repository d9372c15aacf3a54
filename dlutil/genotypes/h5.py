"""The genotype HDF5 format: phased haplotypes × variants, every part of local ancestry reads it.

Layout of one file (one chromosome)::

    data        uint8 (haplotypes, variants)   0 ref, 1 alt, MISSING (255) for a missing call;
                                               chunked (CHUNK_HAPLOTYPES, CHUNK_VARIANTS)
    positions   int64 (variants,)              1-based positions, strictly increasing
    samples     str   (haplotypes,)            haplotype names, ``<sample>_A`` / ``<sample>_B``
    label       uint8 (haplotypes,)            optional: the ancestry of each reference haplotype
                or    (haplotypes, variants)   or per-variant ancestry (admixed haplotypes);
                                               indices into the ``ancestries`` attribute
    attrs       chromosome (str), ancestries (list of str, when there are labels),
                format = 'dlutil-genotypes', version = 1

Read ``samples`` with ``f['samples'].asstr()[:]``. :class:`GenotypeWriter` writes it as a
stream of variant blocks, to a temporary file renamed into place when complete;
:func:`open_genotypes` checks a file against this layout and returns its metadata.
"""
import os

import h5py
import numpy as np

from dlutil import files, h5output

MISSING = 255  # the missing-call code in ``data``
FORMAT = 'dlutil-genotypes'
VERSION = 1
CHUNK_HAPLOTYPES = 64
CHUNK_VARIANTS = 8192
IGNORE = -100  # label of a variant without a truth label (PyTorch's cross-entropy ignore_index)


def haplotype_names(samples):
    """``['s1', 's2']`` -> ``['s1_A', 's1_B', 's2_A', 's2_B']``: two haplotypes per sample."""
    return [f'{s}_{h}' for s in samples for h in 'AB']


class GenotypeWriter:
    """Write a genotype file block by block of variants; atomic (a temporary file until closed).

    Parameters
    ----------
    path: str
        The output file; replaced only when :meth:`close` succeeds.
    samples: list of str
        Haplotype names, one per row of ``data``.
    chromosome: str
    ancestries: list of str or None
        Names of the label values (label ``i`` means ``ancestries[i]``).
    haplotype_labels: array of int, shape=(haplotypes,), or None
        One ancestry per haplotype (a reference panel).
    variant_labels: bool
        Write per-variant labels, passed to :meth:`append` with each block.
    compression: None, 'lzf' or 'gzip'

    Use as a context manager; an exception discards the temporary file.
    """

    def __init__(self, path, samples, chromosome, ancestries=None, haplotype_labels=None,
                 variant_labels=False, compression=None):
        self.path = os.fspath(path)
        self.samples = [str(s) for s in samples]
        n = len(self.samples)
        if n == 0:
            raise ValueError(f'{self.path}: no haplotypes to write')
        if (haplotype_labels is not None or variant_labels) and not ancestries:
            raise ValueError(f'{self.path}: labels need the list of ancestry names')
        if haplotype_labels is not None and variant_labels:
            raise ValueError(f'{self.path}: labels are per haplotype or per variant, not both')
        self._files = files.AtomicFiles(self.path)  # a temporary file, renamed by close()
        self.output = None
        try:
            self.output = h5output.H5Output(self._files.temporaries[0], self.path)
            self._create(n, chromosome, ancestries, haplotype_labels, variant_labels,
                         compression)
        except BaseException as error:
            self._abandon(error)
            raise
        self.n_variants = 0
        self.last_position = None

    def _create(self, n, chromosome, ancestries, haplotype_labels, variant_labels,
                compression):
        self.file = self.output.file
        chunks = (min(n, CHUNK_HAPLOTYPES), CHUNK_VARIANTS)
        self.data = self.file.create_dataset('data', (n, 0), np.uint8, maxshape=(n, None),
                                             chunks=chunks, compression=compression)
        self.positions = self.file.create_dataset('positions', (0,), np.int64,
                                                  maxshape=(None,), chunks=(CHUNK_VARIANTS,))
        self.file.create_dataset('samples', data=np.array(self.samples, dtype=object),
                                 dtype=h5py.string_dtype())
        self.file.attrs.update({'format': FORMAT, 'version': VERSION,
                                'chromosome': str(chromosome)})
        self.label = None
        if ancestries:
            self.file.attrs['ancestries'] = [str(a) for a in ancestries]
        if haplotype_labels is not None:
            labels = np.asarray(haplotype_labels)
            if labels.shape != (n,) or labels.min(initial=0) < 0 \
                    or labels.max(initial=0) >= len(ancestries):
                raise ValueError(f'{self.path}: haplotype labels must be {n} indices into '
                                 f'{len(ancestries)} ancestries, got shape {labels.shape}')
            self.file.create_dataset('label', data=labels.astype(np.uint8))
        elif variant_labels:
            self.label = self.file.create_dataset('label', (n, 0), np.uint8, maxshape=(n, None),
                                                  chunks=chunks, compression=compression)

    def append(self, positions, alleles, labels=None):
        """Add a block of variants.

        Parameters
        ----------
        positions: array of int, shape=(v,)
            Strictly increasing, and beyond those already written.
        alleles: array of uint8, shape=(haplotypes, v)
            0, 1 or :data:`MISSING`.
        labels: array of int, shape=(haplotypes, v), or None
            Per-variant labels (``variant_labels=True`` only).
        """
        positions = np.asarray(positions, dtype=np.int64)
        v = len(positions)
        if alleles.shape != (len(self.samples), v):
            raise ValueError(f'{self.path}: a block of {v} variants needs alleles of shape '
                             f'({len(self.samples)}, {v}), got {alleles.shape}')
        if v == 0:
            return
        if np.any(np.diff(positions) <= 0) or (self.last_position is not None
                                               and positions[0] <= self.last_position):
            raise ValueError(f'{self.path}: positions must be strictly increasing')
        if (self.label is not None) != (labels is not None):
            raise ValueError(f'{self.path}: per-variant labels must come with every block, '
                             f'and only when the writer was made with variant_labels=True')
        end = self.n_variants + v
        self.data.resize(end, axis=1)
        self.data[:, self.n_variants:end] = alleles
        self.positions.resize((end,))
        self.positions[self.n_variants:end] = positions
        if labels is not None:
            self.label.resize(end, axis=1)
            self.label[:, self.n_variants:end] = labels
        self.n_variants, self.last_position = end, int(positions[-1])
        self.output.check()  # a full disk stops here, naming the file

    def close(self):
        """Finish the file and rename it into place (a disk fault: :class:`StorageError`)."""
        if self.file is None:
            return
        self.file = None
        if self.n_variants == 0:
            self._abandon()
            raise ValueError(f'{self.path}: no variants were written')
        try:
            self.output.close()
        except BaseException as error:
            self._abandon(error)
            raise
        self._files.commit()

    def discard(self):
        """Remove the temporary file (after an error)."""
        if self.file is not None:
            self.file = None
            self._abandon()

    def _abandon(self, error=None):
        if self.output is not None:
            self.output.abandon()
        self._files.abandon(error)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.close()
        else:
            self.discard()


def write_genotypes(path, data, positions, samples, chromosome, ancestries=None, label=None,
                    compression=None):
    """Write a whole genotype file from arrays in memory (small data, tests, simulations).

    ``label`` of shape (haplotypes,) is per haplotype, (haplotypes, variants) per variant.
    """
    label = None if label is None else np.asarray(label)
    per_variant = label is not None and label.ndim == 2
    with GenotypeWriter(path, samples, chromosome, ancestries,
                        haplotype_labels=None if per_variant else label,
                        variant_labels=per_variant, compression=compression) as writer:
        step = CHUNK_VARIANTS
        for start in range(0, len(positions), step):
            writer.append(positions[start:start + step],
                          np.asarray(data[:, start:start + step], dtype=np.uint8),
                          label[:, start:start + step] if per_variant else None)


def write_h5(path, fill):
    """Write an HDF5 file atomically: ``fill(h5py.File)`` on a temporary file beside ``path``,
    renamed into place once it is complete."""
    with h5output.create(path) as f:
        fill(f)


class GenotypeInfo:
    """The metadata of a genotype file, checked against the format (arrays are not read).

    Attributes
    ----------
    path, chromosome: str
    n_haplotypes, n_variants: int
    positions: numpy.ndarray, int64, shape=(variants,)
    samples: list of str
    ancestries: list of str, or None without labels
    label_kind: None, 'haplotype' (label (haplotypes,)) or 'variant' (label (haplotypes, variants))
    """

    def __repr__(self):
        return (f'GenotypeInfo({self.path!r}: {self.n_haplotypes} haplotypes x '
                f'{self.n_variants} variants on {self.chromosome}, labels {self.label_kind}, '
                f'ancestries {self.ancestries})')

    def haplotype_labels(self):
        """The per-haplotype labels, int64 shape=(haplotypes,) (``label_kind == 'haplotype'``)."""
        if self.label_kind != 'haplotype':
            raise ValueError(f'{self.path}: needs one label per haplotype (a reference panel), '
                             f'has {self.label_kind or "no"} labels')
        with h5py.File(self.path, 'r') as f:
            return f['label'][:].astype(np.int64)


def open_genotypes(path):
    """Check ``path`` against the genotype format and return its :class:`GenotypeInfo`.

    Raises
    ------
    ValueError: naming the file and what is wrong with it
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such genotype file')
    try:
        f = h5py.File(path, 'r')
    except OSError as error:
        raise ValueError(f'{path}: not a readable HDF5 file ({error})') from None
    with f:
        missing = [key for key in ('data', 'positions', 'samples') if key not in f]
        if missing:
            raise ValueError(f'{path}: a genotype file needs datasets data, positions and '
                             f'samples; missing {missing} (make one with `python -m '
                             f'dlutil.prepare vcf`)')
        data = f['data']
        if data.ndim != 2 or data.dtype != np.uint8:
            raise ValueError(f'{path}: "data" must be uint8 (haplotypes, variants), got '
                             f'{data.dtype} {data.shape}')
        info = GenotypeInfo()
        info.path = path
        info.n_haplotypes, info.n_variants = data.shape
        info.positions = f['positions'][:].astype(np.int64)
        if info.positions.shape != (info.n_variants,):
            raise ValueError(f'{path}: "positions" has shape {info.positions.shape}, expected '
                             f'({info.n_variants},)')
        if np.any(np.diff(info.positions) <= 0):
            raise ValueError(f'{path}: "positions" must be strictly increasing')
        info.samples = list(f['samples'].asstr()[:])
        if len(info.samples) != info.n_haplotypes:
            raise ValueError(f'{path}: {len(info.samples)} samples for {info.n_haplotypes} '
                             f'haplotypes')
        info.chromosome = str(f.attrs.get('chromosome', ''))
        ancestries = f.attrs.get('ancestries')
        info.ancestries = [str(a) for a in ancestries] if ancestries is not None else None
        info.label_kind = None
        if 'label' in f:
            shape = f['label'].shape
            if shape == (info.n_haplotypes,):
                info.label_kind = 'haplotype'
            elif shape == data.shape:
                info.label_kind = 'variant'
            else:
                raise ValueError(f'{path}: "label" has shape {shape}; expected '
                                 f'({info.n_haplotypes},) or {data.shape}')
            if not info.ancestries:
                raise ValueError(f'{path}: has labels but no "ancestries" attribute naming them')
    return info


__all__ = ['MISSING', 'IGNORE', 'GenotypeWriter', 'GenotypeInfo', 'write_genotypes', 'write_h5',
           'open_genotypes', 'haplotype_names']
