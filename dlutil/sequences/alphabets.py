"""The alphabets of one-hot sequences: DNA, RNA, protein, the IUPAC codes, and inferring one.

    resolve_alphabet('rna')                     # 'ACGU'
    infer_alphabet(letter_counts(['ACGTN']))    # 'ACGT'
    channel_names('ACGU', 'HIMS')               # ['AH', 'AI', ..., 'US']: sequence x structure

An alphabet is a string of letters in channel order: channel ``c`` of a one-hot array is the
letter ``alphabet[c]``. A structure alphabet (pysster's ``('ACGU', 'HIMS')``) multiplies the
channels: channel ``seq_index * len(structure) + structure_index``.
"""
from collections import Counter

import numpy as np

DNA = 'ACGT'
RNA = 'ACGU'
PROTEIN = 'ACDEFGHIKLMNPQRSTVWY'
ALPHABETS = {'dna': DNA, 'rna': RNA, 'protein': PROTEIN}
#: nucleotide letter -> the DNA bases it stands for (U is T)
IUPAC = {'A': 'A', 'C': 'C', 'G': 'G', 'T': 'T', 'U': 'T', 'R': 'AG', 'Y': 'CT', 'S': 'CG',
         'W': 'AT', 'K': 'GT', 'M': 'AC', 'B': 'CGT', 'D': 'AGT', 'H': 'ACT', 'V': 'ACG',
         'N': 'ACGT'}
NUCLEOTIDE_SHARE = 0.9  # at least this share of A, C, G, T, U, N: nucleotides, not protein


def resolve_alphabet(alphabet, texts=(), what='alphabet'):
    """``'dna'``/``'rna'``/``'protein'``, a string of letters, or None to infer from ``texts``.

    Returns
    -------
    str: the letters, upper case, in channel order
    """
    if alphabet is None:
        return infer_alphabet(letter_counts(texts))
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f'{what} must be "dna", "rna", "protein" or a string of letters, '
                         f'got {alphabet!r}')
    alphabet = ALPHABETS.get(alphabet.lower(), alphabet).upper()
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f'{what} {alphabet!r} repeats a letter')
    return alphabet


def text_bytes(texts):
    """The texts joined and upper-cased, one uint8 per character (others become ``?``)."""
    return np.frombuffer(''.join(texts).upper().encode('latin-1', 'replace'), dtype=np.uint8)


def letter_counts(texts):
    """Counter of the upper-cased letters of ``texts`` (a list of str)."""
    counts = np.bincount(text_bytes(texts), minlength=256)
    return Counter({chr(i): int(c) for i, c in enumerate(counts) if c})


def infer_alphabet(counts):
    """DNA, RNA or protein from a Counter of letters.

    Nucleotides when at least 90 % of the letters are A, C, G, T, U or N: RNA when U outnumbers
    T, else DNA; protein otherwise.
    """
    total = sum(counts.values())
    if not total:
        raise ValueError('cannot infer the alphabet of empty sequences')
    nucleotides = sum(counts[c] for c in 'ACGTUN')
    if nucleotides >= NUCLEOTIDE_SHARE * total:
        return RNA if counts['U'] > counts['T'] else DNA
    return PROTEIN


def channel_names(alphabet, structure=None):
    """Names of the one-hot channels: the letters, or sequence×structure pairs (``'AH'``)."""
    if not structure:
        return list(alphabet)
    return [a + s for a in alphabet for s in structure]

