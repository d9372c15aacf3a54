"""pysster's FASTA records: headers that end with their classes, sequence-structure records,
and their encoding with a check that the alphabet fits (the format: :mod:`fasta_data`).
"""
import numpy as np

from dlutil.sequences import readers
from dlutil.sequences.alphabets import letter_counts, resolve_alphabet
from dlutil.sequences.onehot import BadLetter, encode

UNKNOWN_LIMIT = 0.1  # more than this share of one unknown letter: the alphabet is wrong


# -- reading ----------------------------------------------------------------------------------
def read_records(path):
    """pysster's view of a FASTA file (plain or gzipped): its records in file order, as read by
    the one FASTA reader, :func:`readers.read_fasta`.

    Returns
    -------
    list of (header, lines): the header without ``>``; ``lines`` the record's non-blank lines,
    whitespace removed, as written (case kept), str.
    """
    return [(record.header, [line.decode('utf-8', 'replace') for line in record.lines])
            for record in readers.read_fasta(path)]


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


def encode_records(sequences, structures=None, alphabet=None, structure=None, length=None,
                   padding='end', where='the data', unknown='zeros'):
    """Resolve the alphabets (None: infer), encode (:func:`onehot.encode`, letters outside the
    alphabet by the ``unknown`` policy), and refuse an alphabet that does not fit.

    Returns
    -------
    (X, alphabet, structure, unknown): as :func:`encode`, with the alphabets used.
    """
    alphabet = resolve_alphabet(alphabet, sequences)
    if structure is True:
        structure = ''.join(sorted(letter_counts(structures)))
    elif structure:
        structure = resolve_alphabet(structure, what='structure')
    try:
        X, counts = encode(sequences, alphabet, structures, structure, length, padding, unknown)
    except BadLetter as bad:
        raise ValueError(f'{where}: sequence {bad.row + 1}: {bad}') from None
    total = sum(len(s) for s in sequences)
    for what, letters in (('sequence', alphabet), ('structure', structure)):
        for letter, count in counts[what].most_common(1):
            if count > UNKNOWN_LIMIT * total:
                raise ValueError(
                    f'{where}: {count / total:.0%} of the {what} letters are {letter!r}, which '
                    f'is not in the {what} alphabet {letters!r}; choose the alphabet that fits '
                    f'the data (letters outside it are encoded as {unknown!r} columns, fine '
                    f'for a few N but not for this many)')
    return X, alphabet, structure, counts


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
