"""The one-hot encoder: letters to channels, with an explicit policy for letters outside the
alphabet; decoding DNA; the reverse complement.

    x = one_hot('ACGTN')                  # float32, shape=(4, 5), rows A, C, G, T; N is 0.25
    decode(x) == 'ACGTN'
    decode(reverse_complement(x[None])[0])  # 'NACGT'
    X, unknown = encode(['ACGTN', 'ACG'], 'ACGT', unknown='zeros')  # shape=(2, 4, 5); N, padding: 0

Channel ``c`` is the letter ``alphabet[c]``; letters are case-insensitive. What a letter outside
the alphabet becomes is the ``unknown`` policy:

- ``'zeros'``: an all-zero column, like padding (pysster's convention; the default of
  :mod:`fasta_data`). Any alphabet; any character.
- ``'uniform'``: N and the other IUPAC codes (R Y S W K M B D H V) are 1/4 in all four rows: a
  model sees no base preference it was not given (the default of ``prepare``). U is read as T
  in DNA, T as U in RNA. Any other character is an error (:class:`BadLetter`).
- ``'fractional'``: each IUPAC code spreads its weight over the bases it stands for (R = A/G is
  0.5, 0.5); otherwise as ``'uniform'``.

``'uniform'`` and ``'fractional'`` need a nucleotide alphabet (``'ACGT'`` or ``'ACGU'``).
"""
import functools
from collections import Counter

import numpy as np

from dlutil.sequences.alphabets import DNA, IUPAC, RNA, text_bytes

ALPHABET = DNA  # the alphabet of prepare's files
UNKNOWN_POLICIES = ('zeros', 'uniform', 'fractional')
IUPAC_MODES = ('uniform', 'fractional')  # the policies that read IUPAC codes
PADDINGS = ('end', 'center')
_BAD = 255  # table code of a character the policy refuses


class BadLetter(ValueError):
    """A character that is not a nucleotide letter; ``row`` and ``position`` say where."""

    def __init__(self, row, position, char):
        super().__init__(f'the sequence has the character {char!r} at position {position + 1}; '
                         f'expected A, C, G, T, U or an IUPAC code ({"".join(IUPAC)})')
        self.row, self.position, self.char = row, position, char


@functools.lru_cache(maxsize=None)
def letter_table(alphabet=DNA, unknown='uniform'):
    """How each byte is encoded: ``(codes, rows)``.

    Returns
    -------
    codes: numpy.ndarray, uint8, shape=(256,)
        Byte -> column of ``rows``; the alphabet's letters (either case) are columns
        ``0 … len(alphabet) - 1``, letters outside it higher ones, 255 a refused character.
    rows: numpy.ndarray, float32, shape=(len(alphabet), K)
        The channel weights of each column.
    """
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f'unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}')
    if unknown != 'zeros' and alphabet not in (DNA, RNA):
        raise ValueError(f"unknown={unknown!r} reads IUPAC codes, so the alphabet must be "
                         f"{DNA!r} or {RNA!r}, got {alphabet!r}; use unknown='zeros'")
    columns = [np.eye(len(alphabet), dtype=np.float32)[i] for i in range(len(alphabet))]
    codes = np.full(256, _BAD if unknown != 'zeros' else len(alphabet), np.uint8)
    for i, letter in enumerate(alphabet):
        codes[ord(letter)] = codes[ord(letter.lower())] = i
    if unknown == 'zeros':
        columns.append(np.zeros(len(alphabet), np.float32))
    else:
        for letter, bases in IUPAC.items():
            if letter in alphabet:
                continue
            bases = bases.replace('T', alphabet[3])  # ACGT and ACGU share their order
            weights = np.zeros(len(alphabet), np.float32)
            if len(bases) == 1 or unknown == 'fractional':
                weights[[alphabet.index(b) for b in bases]] = 1 / len(bases)
            else:
                weights[:] = 1 / len(alphabet)
            if len(bases) == 1:  # U in DNA, T in RNA: the same letter
                codes[ord(letter)] = codes[ord(letter.lower())] = alphabet.index(bases)
                continue
            codes[ord(letter)] = codes[ord(letter.lower())] = len(columns)
            columns.append(weights)
    assert len(columns) < _BAD
    return codes, np.ascontiguousarray(np.array(columns, np.float32).T)


def _check(codes, raw, lengths):
    """Raise :class:`BadLetter` at the first refused character of the joined ``raw`` bytes."""
    bad = np.flatnonzero(codes == _BAD)
    if len(bad):
        ends = np.cumsum(lengths)
        row = int(np.searchsorted(ends, bad[0], side='right'))
        raise BadLetter(row, int(bad[0] - (ends[row] - lengths[row])), chr(raw[bad[0]]))


def encode_batch(seqs, unknown='uniform', out=None, alphabet=DNA):
    """One-hot encode sequences of one length (the fast path of ``prepare``).

    Parameters
    ----------
    seqs: list of bytes
        ``n`` sequences of ``L`` letters each.
    unknown: {'uniform', 'fractional', 'zeros'}
        Letters outside the alphabet; see the module docstring.
    out: numpy.ndarray, float32, shape=(n, channels, L), or None
        Written in place when given (a writer reuses one buffer).
    alphabet: str

    Returns
    -------
    numpy.ndarray, float32, shape=(n, len(alphabet), L)

    Raises
    ------
    BadLetter: the first character the policy refuses, with its row and position
    """
    lengths = {len(seq) for seq in seqs}
    if len(lengths) > 1:
        raise ValueError(f'encode_batch takes sequences of one length, got lengths '
                         f'{[len(seq) for seq in seqs[:10]]}{" …" if len(seqs) > 10 else ""}; '
                         f'use encode() to pad sequences of different lengths')
    codes, rows = letter_table(alphabet, unknown)
    raw = np.frombuffer(b''.join(seqs), np.uint8).reshape(len(seqs), -1)
    index = codes[raw]
    _check(index.ravel(), raw.ravel(), np.full(len(seqs), raw.shape[1]))
    if out is None:
        out = np.empty((len(seqs), len(alphabet), raw.shape[1]), np.float32)
    for channel in range(len(alphabet)):
        # straight into ``out``, no temporary ('clip': every index is valid, and take skips
        # the buffering that bounds checks need)
        np.take(rows[channel], index, out=out[:, channel], mode='clip')
    return out


def one_hot(seq, iupac='uniform'):
    """One-hot encode one DNA or RNA sequence.

    Parameters
    ----------
    seq: str or bytes
        Letters A, C, G, T, U and the IUPAC codes, any case.
    iupac: {'uniform', 'fractional', 'zeros'}
        The ``unknown`` policy for IUPAC codes; see the module docstring.

    Returns
    -------
    numpy.ndarray, float32, shape=(4, len(seq)), rows A, C, G, T
    """
    raw = seq.encode('ascii', 'replace') if isinstance(seq, str) else bytes(seq)
    return encode_batch([raw], iupac)[0]


def pad_offsets(lengths, width, padding='end'):
    """Where each sequence starts in X: 0 (``'end'``: zeros after it) or ``(width - length) // 2``
    (``'center'``: its middle in the middle, the odd zero column at the end)."""
    if padding not in PADDINGS:
        raise ValueError(f'padding must be one of {PADDINGS}, got {padding!r}')
    lengths = np.asarray(lengths, dtype=np.int64)
    return (width - lengths) // 2 if padding == 'center' else np.zeros_like(lengths)


def _unknown_letters(raw, codes, n_letters):
    values, counts = np.unique(raw[codes >= n_letters], return_counts=True)
    return Counter({chr(v): int(c) for v, c in zip(values, counts)})


def encode(sequences, alphabet, structures=None, structure=None, length=None, padding='end',
           unknown='zeros'):
    """One-hot encode sequences of any lengths (and structures) into X, shape=(n, channels,
    length), float32.

    Parameters
    ----------
    sequences: list of str
    alphabet: str
        The sequence alphabet, e.g. ``'ACGT'``.
    structures: list of str or None
        Structure strings, one per sequence and of the same length, with ``structure``.
    structure: str or None
        The structure alphabet, e.g. ``'HIMS'`` or ``'().'``; channel
        ``seq_index * len(structure) + structure_index``. A structure letter outside it makes
        the position all-zero.
    length: int or None
        Positions of X; None means the longest sequence.
    padding: 'end' or 'center'
        Shorter sequences are followed by zero columns, or centred between them.
    unknown: {'zeros', 'uniform', 'fractional'}
        Sequence letters outside the alphabet; see the module docstring.

    Returns
    -------
    (X, unknown): the array, and ``{'sequence': Counter, 'structure': Counter}`` of the
    (upper-cased) letters outside the alphabets.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    width = int(lengths.max()) if length is None else int(length)
    if lengths.max() > width:
        raise ValueError(f'a sequence of length {int(lengths.max())} is longer than '
                         f'length={width}')
    table, rows = letter_table(alphabet, unknown)
    raw = text_bytes(sequences)
    codes = table[raw]
    _check(codes, raw, lengths)
    counts = {'sequence': _unknown_letters(raw, codes, len(alphabet)), 'structure': Counter()}
    fold, minor = 1, np.zeros(len(codes), np.int64)  # the structure index of each position
    known = np.ones(len(codes), bool)
    if structure:
        mismatch = [i for i, (s, t) in enumerate(zip(sequences, structures)) if len(s) != len(t)]
        if len(structures) != len(sequences) or mismatch:
            raise ValueError('encode: every sequence needs a structure string of its length')
        raw_structure = text_bytes(structures)
        minor = letter_table(structure, 'zeros')[0][raw_structure].astype(np.int64)
        counts['structure'] = _unknown_letters(raw_structure, minor, len(structure))
        known, fold = minor < len(structure), len(structure)
    X = np.zeros((len(sequences), len(alphabet) * fold, width), dtype=np.float32)
    row_of = np.repeat(np.arange(len(sequences)), lengths)
    starts = np.cumsum(lengths) - lengths - pad_offsets(lengths, width, padding)
    position = np.arange(len(codes)) - np.repeat(starts, lengths)
    letter = known & (codes < len(alphabet))
    X[row_of[letter], codes[letter].astype(np.int64) * fold + minor[letter],
      position[letter]] = 1.0
    spread = known & (codes >= len(alphabet)) & rows.any(0)[codes]
    for channel in range(len(alphabet)):  # IUPAC codes under 'uniform' or 'fractional'
        X[row_of[spread], channel * fold + minor[spread], position[spread]] = \
            rows[channel, codes[spread]]
    return X, counts


# bases present (A, C, G, T bits) -> the IUPAC letter; no base at all decodes as N too
_DECODE = {sum(1 << DNA.index(b) for b in bases): letter
           for letter, bases in IUPAC.items() if letter != 'U'}
_DECODE[0] = 'N'


def decode(onehot):
    """The DNA sequence of a one-hot array: each position is the letter of the bases with
    weight > 0.

    So 0.25 rows (N and, by default, every IUPAC code) decode as 'N', fractional rows as their
    IUPAC letter, and the reverse complement of an array (``x[::-1, ::-1]``) decodes as the
    reverse complement of its sequence.

    Parameters
    ----------
    onehot: array-like, shape=(4, L) or (4, 1, L)

    Returns
    -------
    str of length L
    """
    x = np.asarray(onehot)
    if x.ndim not in (2, 3) or x.shape[0] != 4 or (x.ndim == 3 and x.shape[1] != 1):
        raise ValueError(f'onehot has shape {x.shape} but must have shape (4, L) or (4, 1, L)')
    bits = ((x.reshape(4, -1) > 0) * np.array([[1], [2], [4], [8]])).sum(0)
    return ''.join(_DECODE[b] for b in bits.tolist())


def reverse_complement(x):
    """Reverse complement of one-hot DNA in ACGT (or RNA in ACGU) order.

    Parameters
    ----------
    x: numpy.ndarray or torch.Tensor, shape=(n, 4, length) or (n, 4, 1, length)

    Returns
    -------
    the same type and shape: complementing A↔T, C↔G reverses the channel axis; the strand runs
    the other way along the last axis. A numpy result is a contiguous copy.
    """
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(np.flip(np.flip(x, 1), -1))
    return x.flip(1).flip(-1)  # a torch.Tensor (not imported here: batch_generator uses this)
