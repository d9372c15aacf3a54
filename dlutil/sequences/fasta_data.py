"""Sequence data from FASTA files, as pysster reads it (Budach & Marsico, Bioinformatics 2018).

Two ways to give the classes, as pysster's ``Data(class_files, alphabet)``:

- several files: one class per file, class index = position in the list (file 0 → class 0, …);
  a single-label task, labels are class indices, shape=(n,), int64;
- one file (a path, or a list of one): multi-label, each header ends with the record's classes
  as comma-separated indices, e.g. ``>peak_17 chr1:100-300 0,2`` (the last whitespace-separated
  word of the header; ``>seq 1`` for one class). Labels are 0/1 rows, shape=(n, n_classes),
  float32.

Files are plain or gzipped (recognised by content, whatever the name); records may span many
lines; blank lines and ``;`` comment lines are skipped; letters are read case-insensitively
(soft-masked lower case is the same base).

Encoding. ``X`` is one-hot, shape=(n, channels, length), float32: channel ``c`` at position ``i``
is 1 when the letter there is the alphabet's ``c``-th letter. The alphabet is ``'ACGT'`` (DNA),
``'ACGU'`` (RNA), the 20 amino acids ``'ACDEFGHIKLMNPQRSTVWY'``, or any string of letters; by
default it is inferred from the data (nucleotides when at least 90 % of the letters are A, C,
G, T, U or N: RNA when U outnumbers T, else DNA; protein otherwise). With a structure alphabet
(pysster's ``alphabet=('ACGU', 'HIMS')``) each record holds a sequence and a structure string of
the same length (two lines, or two equal halves of a wrapped record), and every position is one
letter of the product alphabet: channel ``seq_index * len(structure) + structure_index``, so
there are ``len(alphabet) * len(structure)`` channels (:func:`channel_names` spells them,
``'AH', 'AI', …``).

Decisions where pysster's documentation is silent (the seed says nothing about them):

- a letter outside the alphabet (``N``, IUPAC codes, gaps) is an all-zero column, like padding
  (``unknown='zeros'``, the default; ``'uniform'`` makes N and the IUPAC codes of DNA and RNA
  0.25 rows instead, as ``prepare`` does: :mod:`dlutil.sequences.onehot`);
  :attr:`FastaData.unknown_letters` counts them. When one such letter makes up more than 10 % of
  all letters the alphabet is wrong (a ``T`` in RNA, a structure line read as sequence), and
  that is an error rather than a silently blank data set;
- sequences of unequal length are padded with all-zero columns to the longest sequence (or to
  ``length``): by default at the end (3'), so position ``i`` of ``X`` is position ``i`` of the
  sequence; ``padding='center'`` centres them instead (peaks of varying width, whose binding
  site is near the middle, then line up);
- the split is stratified by class for single-label data (every class is cut 70/15/15, so a
  small class is in the validation and test sets too); multi-label rows are split at random.
  Both are seeded and reproducible; each subset keeps file order.
"""
import os

import numpy as np

from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.sequences.alphabets import (DNA, PROTEIN, RNA, channel_names, infer_alphabet,
                                        letter_counts)
from dlutil.sequences.fasta_records import (decode, encode_records, parse_labels, read_records,
                                            record_texts)
from dlutil.sequences.onehot import encode, pad_offsets

# what a def.py or a test imports from here: the data set, and the pieces it is made of
__all__ = ['FastaData', 'prediction_generator', 'read_records', 'parse_labels', 'encode',
           'encode_records', 'decode', 'channel_names', 'infer_alphabet', 'letter_counts',
           'DNA', 'RNA', 'PROTEIN', 'GROUPS']
GROUPS = ('train', 'val', 'test', 'all')


# -- data sets --------------------------------------------------------------------------------
def _check_split(split):
    try:
        fractions = [float(f) for f in split]
    except (TypeError, ValueError):
        fractions = []
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6 \
            or fractions[0] <= 0 or fractions[1] <= 0:
        raise ValueError(f'split must be three fractions (train, validation, test) that sum to 1, '
                         f'training and validation above 0, e.g. (0.7, 0.15, 0.15); got {split!r}')
    return fractions


def _split_indices(index, fractions, rng):
    """Cut ``index`` (shuffled by ``rng``) into train/val/test by ``fractions``."""
    order = rng.permutation(index)
    n = len(order)
    n_val, n_test = (int(round(n * f)) for f in fractions[1:])
    n_val = max(n_val, 1)
    n_test = max(n_test, 1) if fractions[2] > 0 else 0
    if n - n_val - n_test < 1:
        return None
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


class FastaData:
    """pysster's ``Data``: FASTA files → one-hot X, labels, and a seeded train/val/test split.

    Parameters
    ----------
    paths: str or list of str
        One FASTA file per class (class index = position in the list), or one file with the
        classes in its headers (multi-label); see the module docstring.
    alphabet: str or None
        ``'dna'``, ``'rna'``, ``'protein'``, the letters themselves (``'ACGT'``), or None to
        infer it.
    structure: str, True or None
        Structure alphabet of sequence-structure records (``'HIMS'``, ``'().'``); True takes
        the letters found in the structure strings, sorted.
    split: (float, float, float)
        Training, validation and test fractions (test may be 0).
    seed: int
        Seed of the split.
    length: int or None
        Positions of X (default: the longest sequence).
    padding: 'end' or 'center'
        Where shorter sequences get their zero columns: after them (default: position ``i`` of X
        is position ``i`` of the sequence), or on both sides, centring them (better for peaks
        of varying width centred on a binding site).
    class_names: list of str or None
        Default: the file names without their FASTA and gzip suffixes (several files), or
        ``'0'``, ``'1'``, … (multi-label).
    n_classes: int or None
        Multi-label only: the number of classes (default: the largest index in the headers + 1).
    unknown: {'zeros', 'uniform', 'fractional'}
        What a letter outside the alphabet becomes: an all-zero column (default, as pysster),
        or, for DNA and RNA, N and the IUPAC codes as 0.25 rows or spread over their bases
        (see :mod:`onehot`).

    Attributes
    ----------
    X: numpy.ndarray, shape=(n, channels, length), float32
    labels: numpy.ndarray, shape=(n,) int64 class indices, or (n, n_classes) float32 0/1
    sequences, structures, names: lists of str, in file order (``structures`` None without a
        structure alphabet); ``lengths`` the sequences' lengths, ``offsets`` where each starts
        in X (0 unless centred), ``files`` each record's file.
    index: dict of numpy.ndarray
        Rows of each group, ``'train'``, ``'val'``, ``'test'``, ``'all'``; the generators serve
        these rows in this order (the training generator shuffled).
    alphabet, structure: str
        The alphabets used (``structure`` None without one); :attr:`channel_names` the channels.
    unknown_letters: dict
        ``{'sequence': Counter, 'structure': Counter}``: letters outside the alphabets, which
        are encoded by the ``unknown`` policy (all-zero columns by default).
    """

    def __init__(self, paths, alphabet=None, structure=None, split=(0.7, 0.15, 0.15), seed=0,
                 length=None, padding='end', class_names=None, n_classes=None, unknown='zeros'):
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError('FastaData: no FASTA files given')
        self.paths = [os.fspath(p) for p in paths]
        self.multilabel = len(self.paths) == 1
        self.seed = seed
        fractions = _check_split(split)
        records, label_lists = [], []
        for file_index, path in enumerate(self.paths):
            for header, lines in read_records(path):
                records.append((path, header, lines))
                label_lists.append(parse_labels(path, header, n_classes) if self.multilabel
                                   else [file_index])
        self.files = [r[0] for r in records]
        self.names = [r[1] for r in records]
        self.sequences, self.structures = record_texts(records, structure)
        self.lengths = np.array([len(s) for s in self.sequences], dtype=np.int64)
        where = self.paths[0] if self.multilabel else ', '.join(self.paths)
        self.X, self.alphabet, self.structure, self.unknown_letters = encode_records(
            self.sequences, self.structures, alphabet, structure, length, padding, where, unknown)
        self.padding = padding
        self.offsets = pad_offsets(self.lengths, self.X.shape[2], padding)
        if self.multilabel:
            self.n_classes = int(n_classes or max(max(ls) for ls in label_lists) + 1)
            self.labels = np.zeros((len(self.names), self.n_classes), dtype=np.float32)
            for row, labels in enumerate(label_lists):
                self.labels[row, labels] = 1.0
        else:
            self.n_classes = len(self.paths)
            self.labels = np.array([ls[0] for ls in label_lists], dtype=np.int64)
        self.class_names = list(class_names) if class_names is not None else (
            [str(i) for i in range(self.n_classes)] if self.multilabel
            else [_stem(p) for p in self.paths])
        if len(self.class_names) != self.n_classes:
            raise ValueError(f'class_names has {len(self.class_names)} names for '
                             f'{self.n_classes} classes')
        self.index = self._split(fractions, np.random.default_rng(seed))

    def _split(self, fractions, rng):
        n = len(self.names)
        strata = ([np.flatnonzero(self.labels == c) for c in range(self.n_classes)]
                  if not self.multilabel else [np.arange(n)])
        parts = {'train': [], 'val': [], 'test': []}
        for c, rows in enumerate(strata):
            cut = _split_indices(rows, fractions, rng)
            if cut is None:
                what = (f'class {self.class_names[c]!r} ({self.paths[c]})' if not self.multilabel
                        else 'the file')
                raise ValueError(f'{what} has {len(rows)} sequences, too few to split '
                                 f'{fractions} into non-empty training, validation and test sets')
            for group, chosen in zip(parts, cut):
                parts[group].append(chosen)
        index = {group: np.sort(np.concatenate(chosen)) for group, chosen in parts.items()}
        index['all'] = np.arange(n)
        return index

    # -- what a def.py uses -------------------------------------------------------------------
    @property
    def layout(self):
        """The network's input and output: ``n_channels``, ``seq_len``, ``n_classes``,
        ``multilabel``, ``padding`` (what :class:`models.pysster.PyssterModel` needs)."""
        return {'n_channels': int(self.X.shape[1]), 'seq_len': int(self.X.shape[2]),
                'n_classes': self.n_classes, 'multilabel': self.multilabel,
                'padding': self.padding}

    @property
    def channel_names(self):
        return channel_names(self.alphabet, self.structure)

    def generator(self, group, batch_size=None, shuffle=False):
        """A :class:`MatrixBatchGenerator` of ``(X, labels)`` for ``group``."""
        if group not in GROUPS:
            raise ValueError(f'group must be one of {GROUPS}, got {group!r}')
        rows = self.index[group]
        if not len(rows):
            raise ValueError(f'the {group!r} set is empty (split test fraction 0)')
        return MatrixBatchGenerator(self.X[rows], self.labels[rows], batch_size, shuffle=shuffle)

    def train(self, batch_size, shuffle=True):
        return self.generator('train', batch_size, shuffle)

    def val(self, batch_size=None):
        return self.generator('val', batch_size)

    def test(self, batch_size=None):
        return self.generator('test', batch_size)

    def group_sequences(self, group):
        """The sequences (and structures) of ``group``, in the order its generator serves them."""
        rows = self.index[group]
        if self.structures is None:
            return [self.sequences[i] for i in rows]
        return [(self.sequences[i], self.structures[i]) for i in rows]

    def decode(self, X, unknown_letter=None):
        """One-hot rows back to letters; see :func:`decode`."""
        return decode(X, self.alphabet, self.structure, unknown_letter)

    def __repr__(self):
        sizes = ', '.join(f'{g} {len(self.index[g])}' for g in ('train', 'val', 'test'))
        return (f'FastaData({len(self.names)} sequences, {self.n_classes} classes'
                f'{" (multi-label)" if self.multilabel else ""}, alphabet {self.alphabet!r}'
                f'{f" × {self.structure!r}" if self.structure else ""}, length '
                f'{self.X.shape[2]}; {sizes})')


def _stem(path):
    name = os.path.basename(path)
    for suffix in ('.gz', '.fasta', '.fa', '.fna', '.fas', '.faa', '.txt'):
        if name.lower().endswith(suffix):
            name = name[:-len(suffix)]
    return name


def prediction_generator(path, alphabet=None, structure=None, length=None, padding='end',
                         batch_size=None, unknown='zeros'):
    """The records of one FASTA file as inputs alone (no labels), for ``get_pred_generator``.

    Encoded as :class:`FastaData` encodes (give the same alphabets, ``padding``, ``unknown``
    and, as ``length``, the model's input length); a record longer than ``length`` is an error that
    names it. The generator's ``names`` (and ``row_names()``) hold the headers, in order.
    """
    records = [(path, header, lines) for header, lines in read_records(path)]
    sequences, structures = record_texts(records, structure)
    if length is not None:
        too_long = [(r[1], len(s)) for r, s in zip(records, sequences) if len(s) > length]
        if too_long:
            raise ValueError(f'{path}: {len(too_long)} sequences are longer than the model\'s '
                             f'input of {length} positions, e.g. >{too_long[0][0]} '
                             f'({too_long[0][1]}); cut them to at most {length}')
    X, _, _, _ = encode_records(sequences, structures, alphabet, structure, length, padding,
                                path, unknown)
    return MatrixBatchGenerator(X, None, batch_size, names=[r[1] for r in records])
