"""One-hot DNA: rows A, C, G, T; N and other IUPAC codes as 0.25 rows, or spread over their bases.

    x = one_hot('ACGTN')          # float32, shape=(4, 5), rows A, C, G, T
    decode(x) == 'ACGTN'
    decode(x[::-1, ::-1])         # the reverse complement: 'NACGT'

A, C, G, T set one row; U is read as T; letters are case-insensitive. N and the other IUPAC codes
(R Y S W K M B D H V) are 0.25 in all four rows (``iupac='uniform'``, the usual convention: a model
sees no base preference it was not given), or their weight spread over the bases they stand for
(``iupac='fractional'``: R = A/G is 0.5, 0.5). Any other character is an error.
"""
import functools

import numpy as np
import torch

ALPHABET = 'ACGT'
#: letter -> the bases it stands for
IUPAC = {'A': 'A', 'C': 'C', 'G': 'G', 'T': 'T', 'U': 'T', 'R': 'AG', 'Y': 'CT', 'S': 'CG',
         'W': 'AT', 'K': 'GT', 'M': 'AC', 'B': 'CGT', 'D': 'AGT', 'H': 'ACT', 'V': 'ACG',
         'N': 'ACGT'}
IUPAC_MODES = ('uniform', 'fractional')


class BadLetter(ValueError):
    """A character that is not a nucleotide letter; ``row`` and ``position`` say where."""

    def __init__(self, row, position, char):
        super().__init__(f'the sequence has the character {char!r} at position {position + 1}; '
                         f'expected A, C, G, T, U or an IUPAC code ({"".join(IUPAC)})')
        self.row, self.position, self.char = row, position, char


@functools.lru_cache(maxsize=None)
def _tables(iupac):
    """``(codes, rows)``: byte -> letter index (255: not a letter); rows shape=(4, 16), the
    weights of A, C, G, T for each letter."""
    letters = list(IUPAC)
    rows = np.zeros((len(letters), 4), np.float32)
    codes = np.full(256, 255, np.uint8)
    for i, letter in enumerate(letters):
        bases = IUPAC[letter]
        if len(bases) == 1 or iupac == 'fractional':
            rows[i, [ALPHABET.index(b) for b in bases]] = 1 / len(bases)
        else:
            rows[i] = 0.25
        codes[ord(letter)] = codes[ord(letter.lower())] = i
    return codes, np.ascontiguousarray(rows.T)


def encode_batch(seqs, iupac='uniform', out=None):
    """One-hot encode sequences of one length.

    Parameters
    ----------
    seqs: list of bytes
        ``n`` sequences of ``L`` letters each.
    iupac: {'uniform', 'fractional'}
        As for :func:`one_hot`.
    out: numpy.ndarray, float32, shape=(n, 4, L), or None
        Written in place when given (a writer reuses one buffer).

    Returns
    -------
    numpy.ndarray, float32, shape=(n, 4, L)

    Raises
    ------
    BadLetter: the first character that is not a nucleotide letter, with its row and position
    """
    if iupac not in IUPAC_MODES:
        raise ValueError(f"iupac must be 'uniform' or 'fractional', got {iupac!r}")
    codes, rows = _tables(iupac)
    raw = np.frombuffer(b''.join(seqs), np.uint8).reshape(len(seqs), -1)
    index = codes[raw]
    bad = np.argwhere(index == 255)
    if len(bad):
        row, position = bad[0]
        raise BadLetter(int(row), int(position), chr(raw[row, position]))
    if out is None:
        out = np.empty((len(seqs), 4, raw.shape[1]), np.float32)
    for channel in range(4):
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
    iupac: {'uniform', 'fractional'}
        IUPAC codes as 0.25 in every row, or their weight spread over the bases they stand for.

    Returns
    -------
    numpy.ndarray, float32, shape=(4, len(seq)), rows A, C, G, T
    """
    raw = seq.encode('ascii', 'replace') if isinstance(seq, str) else bytes(seq)
    return encode_batch([raw], iupac)[0]


# bases present (A, C, G, T bits) -> the IUPAC letter; no base at all decodes as N too
_DECODE = {sum(1 << ALPHABET.index(b) for b in bases): letter
           for letter, bases in IUPAC.items() if letter != 'U'}
_DECODE[0] = 'N'


def decode(onehot):
    """The sequence of a one-hot array: each position is the letter of the bases with weight > 0.

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
    """Reverse complement of one-hot DNA in ACGT order, shape=(n, 4, length) or (n, 4, 1, length).

    Complementing A↔T, C↔G reverses the channel axis; the strand runs the other way along the
    last axis. Works on numpy arrays and tensors.
    """
    if isinstance(x, torch.Tensor):
        return x.flip(1).flip(-1)
    return np.ascontiguousarray(np.flip(np.flip(x, 1), -1))
