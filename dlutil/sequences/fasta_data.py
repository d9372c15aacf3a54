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

- a letter outside the alphabet (``N``, IUPAC codes, gaps) is an all-zero column, like padding;
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
import gzip
import os
from collections import Counter

import numpy as np

from batch_generator import MatrixBatchGenerator

DNA = 'ACGT'
RNA = 'ACGU'
PROTEIN = 'ACDEFGHIKLMNPQRSTVWY'
ALPHABETS = {'dna': DNA, 'rna': RNA, 'protein': PROTEIN}
UNKNOWN_LIMIT = 0.1  # more than this share of one unknown letter: the alphabet is wrong
GROUPS = ('train', 'val', 'test', 'all')
PADDINGS = ('end', 'center')


# -- reading ----------------------------------------------------------------------------------
def _open_text(path):
    with open(path, 'rb') as handle:
        gzipped = handle.read(2) == b'\x1f\x8b'
    if gzipped:
        return gzip.open(path, 'rt', encoding='utf-8', errors='replace')
    return open(path, 'rt', encoding='utf-8', errors='replace')


def read_fasta(path):
    """The records of a FASTA file (plain or gzipped), in file order.

    Returns
    -------
    list of (header, lines): the header without ``>``; ``lines`` the record's non-blank lines,
    whitespace removed, as written (case kept).
    """
    records = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith(';'):
                continue
            if line.startswith('>'):
                records.append((line[1:].strip(), []))
            elif not records:
                raise ValueError(f'{path}, line {number}: sequence before the first ">" header; '
                                 f'is this a FASTA file?')
            else:
                records[-1][1].append(''.join(line.split()))
    if not records:
        raise ValueError(f'{path}: no FASTA records (no line starts with ">")')
    for header, lines in records:
        if not lines:
            raise ValueError(f'{path}: record >{header} has no sequence')
    return records


def _split_structure(path, header, lines):
    """A sequence-structure record: two lines, or a wrapped record cut into two equal halves."""
    whole = ''.join(lines)
    half, ends = len(whole) // 2, np.cumsum([len(line) for line in lines])
    if len(lines) < 2 or len(whole) % 2 or half not in ends:
        raise ValueError(f'{path}: record >{header} must hold a sequence and a structure string '
                         f'of the same length (two lines, or two equally wrapped halves); its '
                         f'lines have lengths {[len(line) for line in lines]}')
    return whole[:half], whole[half:]


def parse_labels(path, header, n_classes=None):
    """Class indices from the last word of a multi-label header, e.g. ``'seq7 0,2'`` → [0, 2]."""
    words = header.split()
    word = words[-1] if len(words) > 1 else ''
    try:
        labels = [int(part) for part in word.split(',')]
    except ValueError:
        labels = []
    if not labels or min(labels) < 0 or (n_classes is not None and max(labels) >= n_classes):
        allowed = f' below {n_classes}' if n_classes is not None else ''
        raise ValueError(f'{path}: header >{header} must end with its classes as comma-separated '
                         f'indices{allowed}, e.g. ">{words[0] if words else "seq"} 0,2" (one '
                         f'file means multi-label data; give one file per class otherwise)')
    return labels


# -- alphabets and encoding -------------------------------------------------------------------
def resolve_alphabet(alphabet, texts=(), what='alphabet'):
    """``'dna'``/``'rna'``/``'protein'``, a string of letters, or None to infer from ``texts``."""
    if alphabet is None:
        return infer_alphabet(letter_counts(texts))
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f'{what} must be "dna", "rna", "protein" or a string of letters, '
                         f'got {alphabet!r}')
    alphabet = ALPHABETS.get(alphabet.lower(), alphabet).upper()
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f'{what} {alphabet!r} repeats a letter')
    return alphabet


def _bytes(texts):
    """The texts joined and upper-cased, one uint8 per character (others become ``?``)."""
    return np.frombuffer(''.join(texts).upper().encode('latin-1', 'replace'), dtype=np.uint8)


def letter_counts(texts):
    """Counter of the upper-cased letters of ``texts`` (a list of str)."""
    counts = np.bincount(_bytes(texts), minlength=256)
    return Counter({chr(i): int(c) for i, c in enumerate(counts) if c})


def infer_alphabet(counts):
    """DNA, RNA or protein from a Counter of letters; see the module docstring."""
    total = sum(counts.values())
    if not total:
        raise ValueError('cannot infer the alphabet of empty sequences')
    nucleotides = sum(counts[c] for c in 'ACGTUN')
    if nucleotides >= 0.9 * total:
        return RNA if counts['U'] > counts['T'] else DNA
    return PROTEIN


def channel_names(alphabet, structure=None):
    """Names of the one-hot channels: the letters, or sequence×structure pairs (``'AH'``)."""
    if not structure:
        return list(alphabet)
    return [a + s for a in alphabet for s in structure]


def _codes(texts, alphabet):
    """Letters → alphabet indices (−1 outside it), all texts concatenated, plus unknown counts."""
    table = np.full(256, -1, dtype=np.int64)
    for i, letter in enumerate(alphabet):
        table[ord(letter)] = i
    joined = _bytes(texts)
    codes = table[joined]
    values, counts = np.unique(joined[codes < 0], return_counts=True)
    return codes, Counter({chr(v): int(c) for v, c in zip(values, counts)})


def pad_offsets(lengths, width, padding='end'):
    """Where each sequence starts in X: 0 (``'end'``: zeros after it) or ``(width - length) // 2``
    (``'center'``: its middle in the middle, the odd zero column at the end)."""
    if padding not in PADDINGS:
        raise ValueError(f'padding must be one of {PADDINGS}, got {padding!r}')
    lengths = np.asarray(lengths, dtype=np.int64)
    return (width - lengths) // 2 if padding == 'center' else np.zeros_like(lengths)


def encode(sequences, alphabet, structures=None, structure=None, length=None, padding='end'):
    """One-hot encode sequences (and structures) into X, shape=(n, channels, length), float32.

    Parameters
    ----------
    sequences: list of str
    alphabet: str
        The sequence alphabet, e.g. ``'ACGT'``.
    structures: list of str or None
        Structure strings, one per sequence and of the same length, with ``structure``.
    structure: str or None
        The structure alphabet, e.g. ``'HIMS'`` or ``'().'``.
    length: int or None
        Positions of X; None means the longest sequence.
    padding: 'end' or 'center'
        Shorter sequences are followed by zero columns, or centred between them.

    Returns
    -------
    (X, unknown): the array, and ``{'sequence': Counter, 'structure': Counter}`` of the letters
    outside the alphabets (encoded as all-zero columns).
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    width = int(lengths.max()) if length is None else int(length)
    if lengths.max() > width:
        raise ValueError(f'a sequence of length {int(lengths.max())} is longer than '
                         f'length={width}')
    codes, unknown = _codes(sequences, alphabet)
    unknown = {'sequence': unknown, 'structure': Counter()}
    channels = len(alphabet)
    if structure:
        mismatch = [i for i, (s, t) in enumerate(zip(sequences, structures)) if len(s) != len(t)]
        if len(structures) != len(sequences) or mismatch:
            raise ValueError('encode: every sequence needs a structure string of its length')
        struct_codes, unknown['structure'] = _codes(structures, structure)
        known = (codes >= 0) & (struct_codes >= 0)
        codes = np.where(known, codes * len(structure) + struct_codes, -1)
        channels *= len(structure)
    X = np.zeros((len(sequences), channels, width), dtype=np.float32)
    rows = np.repeat(np.arange(len(sequences)), lengths)
    starts = np.cumsum(lengths) - lengths - pad_offsets(lengths, width, padding)
    positions = np.arange(len(codes)) - np.repeat(starts, lengths)
    known = codes >= 0
    X[rows[known], codes[known], positions[known]] = 1.0
    return X, unknown


def encode_records(sequences, structures=None, alphabet=None, structure=None, length=None,
                   padding='end', where='the data'):
    """Resolve the alphabets (None: infer), encode, and refuse an alphabet that does not fit.

    Returns
    -------
    (X, alphabet, structure, unknown): as :func:`encode`, with the alphabets used.
    """
    alphabet = resolve_alphabet(alphabet, sequences)
    if structure is True:
        structure = ''.join(sorted(letter_counts(structures)))
    elif structure:
        structure = resolve_alphabet(structure, what='structure')
    X, unknown = encode(sequences, alphabet, structures, structure, length, padding)
    total = sum(len(s) for s in sequences)
    for what, letters in (('sequence', alphabet), ('structure', structure)):
        for letter, count in unknown[what].most_common(1):
            if count > UNKNOWN_LIMIT * total:
                raise ValueError(
                    f'{where}: {count / total:.0%} of the {what} letters are {letter!r}, which '
                    f'is not in the {what} alphabet {letters!r}; choose the alphabet that fits '
                    f'the data (letters outside it are encoded as all-zero columns, fine for a '
                    f'few N but not for this many)')
    return X, alphabet, structure, unknown


def record_texts(records, structure=None):
    """``(sequences, structures)`` of ``[(path, header, lines)]``; structures None without
    ``structure``."""
    if not structure:
        return [''.join(lines) for _, _, lines in records], None
    pairs = [_split_structure(path, header, lines) for path, header, lines in records]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def decode(X, alphabet, structure=None, unknown_letter=None):
    """One-hot X, shape=(channels, length) or (n, channels, length), back to letters.

    All-zero columns (unknown letters and padding) become ``unknown_letter`` (default ``'N'`` for
    nucleotide alphabets, ``'X'`` otherwise). With a structure alphabet each item is a
    ``(sequence, structure)`` pair (``'.'`` for unknown structure).
    """
    X = np.asarray(X)
    if X.ndim == 3:
        return [decode(x, alphabet, structure, unknown_letter) for x in X]
    if unknown_letter is None:
        unknown_letter = 'N' if set(alphabet) <= set('ACGTU') else 'X'
    known = X.max(axis=0) > 0
    index = X.argmax(axis=0)
    if not structure:
        return ''.join(alphabet[i] if k else unknown_letter for i, k in zip(index, known))
    seq = ''.join(alphabet[i // len(structure)] if k else unknown_letter
                  for i, k in zip(index, known))
    struct = ''.join(structure[i % len(structure)] if k else '.' for i, k in zip(index, known))
    return seq, struct


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
        are encoded as all-zero columns.
    """

    def __init__(self, paths, alphabet=None, structure=None, split=(0.7, 0.15, 0.15), seed=0,
                 length=None, padding='end', class_names=None, n_classes=None):
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError('FastaData: no FASTA files given')
        self.paths = [os.fspath(p) for p in paths]
        self.multilabel = len(self.paths) == 1
        self.seed = seed
        fractions = _check_split(split)
        records, label_lists = [], []
        for file_index, path in enumerate(self.paths):
            for header, lines in read_fasta(path):
                records.append((path, header, lines))
                label_lists.append(parse_labels(path, header, n_classes) if self.multilabel
                                   else [file_index])
        self.files = [r[0] for r in records]
        self.names = [r[1] for r in records]
        self.sequences, self.structures = record_texts(records, structure)
        self.lengths = np.array([len(s) for s in self.sequences], dtype=np.int64)
        where = self.paths[0] if self.multilabel else ', '.join(self.paths)
        self.X, self.alphabet, self.structure, self.unknown_letters = encode_records(
            self.sequences, self.structures, alphabet, structure, length, padding, where)
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
                         batch_size=None):
    """The records of one FASTA file as inputs alone (no labels), for ``get_pred_generator``.

    Encoded as :class:`FastaData` encodes (give the same alphabets, ``padding`` and, as
    ``length``, the model's input length); a record longer than ``length`` is an error that
    names it. The generator's ``names`` (and ``row_names()``) hold the headers, in order.
    """
    records = [(path, header, lines) for header, lines in read_fasta(path)]
    sequences, structures = record_texts(records, structure)
    if length is not None:
        too_long = [(r[1], len(s)) for r, s in zip(records, sequences) if len(s) > length]
        if too_long:
            raise ValueError(f'{path}: {len(too_long)} sequences are longer than the model\'s '
                             f'input of {length} positions, e.g. >{too_long[0][0]} '
                             f'({too_long[0][1]}); cut them to at most {length}')
    X, _, _, _ = encode_records(sequences, structures, alphabet, structure, length, padding,
                                path)
    return MatrixBatchGenerator(X, None, batch_size, names=[r[1] for r in records])
