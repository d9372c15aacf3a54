"""Sequence motifs: a position weight matrix over an alphabet, its sequence logo and MEME text.

A :class:`Motif` is what a first-layer convolution kernel detects (see :mod:`interpret`): the
letters of the input windows where it fires most, counted per position. As in pysster (Budach &
Marsico 2018), the PWM is ``0.999 * frequency + 0.001 / |alphabet|``, so no letter has
probability zero, and motifs are exported in MEME version 4 format::

    motif = Motif.from_sequences(['ACGTAC', 'ACGTAA'], 'ACGT', name='kernel_0')
    motif.logo('motif.png')
    write_meme([motif], 'motifs.meme')

Alphabets are strings of one-character letters (``'ACGT'``) or sequences of symbols. Product
alphabets of sequence and structure (every symbol one sequence letter and one structure letter,
e.g. ``'AH'``, ``'AI'``, …, as pysster combines them) have :meth:`Motif.marginals`: one motif per
component, drawn one above the other.
"""
import itertools
import math

import numpy as np

from dlutil import files
from dlutil.interpret.logos import draw_logo
from dlutil.sequences.alphabets import DNA, PROTEIN, RNA

PSEUDOCOUNT = 0.001

def alphabet_symbols(alphabet, n_channels=None):
    """The symbols of one-hot channels 0, 1, …, as a tuple of strings.

    Parameters
    ----------
    alphabet: str, sequence of symbols, or an object with an ``alphabet`` attribute
        ``'ACGT'``; ``['A', 'C', 'G', 'T']``; product symbols as strings (``['AH', 'AI', …]``)
        or tuples (``[('A', 'H'), …]``); or a pair of component alphabets
        ``('ACGU', 'HIMS')`` whose product (sequence-major) has ``n_channels`` symbols.
    n_channels: int, optional
        The number of one-hot channels the symbols must match.
    """
    alphabet = getattr(alphabet, 'alphabet', alphabet)
    if isinstance(alphabet, str):
        symbols = tuple(alphabet)
    else:
        items = list(alphabet)
        if (n_channels is not None and len(items) == 2 and all(isinstance(a, str) for a in items)
                and len(items[0]) * len(items[1]) == n_channels != 2):
            items = list(itertools.product(*items))  # pysster's (sequence, structure) pair
        symbols = tuple(s if isinstance(s, str) else ''.join(map(str, s)) for s in items)
    if not symbols or any(not s for s in symbols):
        raise ValueError(f'alphabet {alphabet!r}: expected letters such as "ACGT"')
    if len(set(symbols)) != len(symbols):
        raise ValueError(f'alphabet {alphabet!r} repeats a symbol')
    if n_channels is not None and len(symbols) != n_channels:
        raise ValueError(f'alphabet {alphabet!r} has {len(symbols)} symbols but the one-hot input '
                         f'has {n_channels} channels; they must match channel for channel')
    return symbols


def product_components(symbols):
    """For a full product alphabet (``'AH', 'AI', …``): the component alphabets, else None."""
    width = len(symbols[0])
    if width < 2 or any(len(s) != width for s in symbols):
        return None
    components = tuple(''.join(dict.fromkeys(s[i] for s in symbols)) for i in range(width))
    if math.prod(len(c) for c in components) != len(symbols):
        return None
    return components


class Motif:
    """A position weight matrix over an alphabet.

    Parameters
    ----------
    alphabet: str or sequence of symbols
        See :func:`alphabet_symbols`.
    pwm: array, shape=(length, |alphabet|)
        Letter probabilities; every row sums to 1.
    name: str
    n_sites: int
        How many sequences the motif was built from (MEME's ``nsites``).
    """

    def __init__(self, alphabet, pwm, name='', n_sites=0):
        self.alphabet = alphabet_symbols(alphabet)
        pwm = np.asarray(pwm, dtype=np.float64)
        if pwm.ndim != 2 or pwm.shape[1] != len(self.alphabet) or pwm.shape[0] < 1:
            raise ValueError(f'pwm has shape {pwm.shape} but must have shape (length, '
                             f'{len(self.alphabet)}) for the alphabet {"".join(self.alphabet)!r}')
        if np.any(pwm < 0) or not np.allclose(pwm.sum(axis=1), 1, atol=1e-6):
            raise ValueError('pwm rows must be probabilities: non-negative, summing to 1')
        self.pwm, self.name, self.n_sites = pwm, str(name), int(n_sites)

    @classmethod
    def from_counts(cls, counts, alphabet, name='', n_sites=None, pseudocount=PSEUDOCOUNT):
        """A motif from letter counts, shape=(length, |alphabet|).

        PWM = (1 − pseudocount) · frequency + pseudocount / |alphabet|; a position without any
        count is uniform. ``n_sites`` defaults to the largest count total of a position.
        """
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 2 or np.any(counts < 0):
            raise ValueError(f'counts must be non-negative, shape (length, |alphabet|), got '
                             f'shape {counts.shape}')
        totals = counts.sum(axis=1, keepdims=True)
        freq = np.divide(counts, totals, out=np.full_like(counts, 1 / max(counts.shape[1], 1)),
                         where=totals > 0)
        pwm = (1 - pseudocount) * freq + pseudocount / counts.shape[1]
        if n_sites is None:
            n_sites = int(round(totals.max())) if totals.size else 0
        return cls(alphabet, pwm, name=name, n_sites=n_sites)

    @classmethod
    def from_sequences(cls, sequences, alphabet, name='', pseudocount=PSEUDOCOUNT):
        """A motif from equal-length sequences (strings, or lists of symbols); letters outside
        the alphabet (``N``) count as none."""
        symbols = alphabet_symbols(alphabet)
        width = len(symbols[0]) if len({len(s) for s in symbols}) == 1 else 1
        sequences = [[s[i:i + width] for i in range(0, len(s), width)] if isinstance(s, str)
                     else list(s) for s in sequences]
        if not sequences or len({len(s) for s in sequences}) != 1:
            raise ValueError('from_sequences needs at least one sequence, all of one length')
        index = {s: i for i, s in enumerate(symbols)}
        counts = np.zeros((len(sequences[0]), len(symbols)))
        for sequence in sequences:
            for position, letter in enumerate(sequence):
                if letter in index:
                    counts[position, index[letter]] += 1
        return cls.from_counts(counts, symbols, name=name, n_sites=len(sequences),
                               pseudocount=pseudocount)

    @property
    def length(self):
        return len(self.pwm)

    @property
    def consensus(self):
        """The most probable symbol at every position."""
        return ''.join(self.alphabet[i] for i in self.pwm.argmax(axis=1))

    def information(self):
        """Information content per letter in bits, p·(log2 |A| − H)."""
        p = self.pwm
        entropy = -np.sum(p * np.log2(np.where(p > 0, p, 1)), axis=1, keepdims=True)
        return p * (math.log2(len(self.alphabet)) - entropy)

    def marginals(self):
        """Product alphabets: one motif per component (sequence, structure), else ``None``."""
        components = product_components(self.alphabet)
        if components is None:
            return None
        motifs = []
        for i, letters in enumerate(components):
            pwm = np.zeros((self.length, len(letters)))
            for j, symbol in enumerate(self.alphabet):
                pwm[:, letters.index(symbol[i])] += self.pwm[:, j]
            motifs.append(Motif(letters, pwm, name=self.name, n_sites=self.n_sites))
        return tuple(motifs)

    def to_meme(self, name=None):
        """This motif as a MEME ``MOTIF`` block (the letters in :func:`meme_alphabet` order)."""
        letters, order = meme_alphabet(self.alphabet)
        name = (name or self.name or 'motif').replace(' ', '_')
        rows = '\n'.join(' ' + ' '.join(f'{p:.6f}' for p in row) for row in self.pwm[:, order])
        return (f'MOTIF {name} {self.consensus}\n'
                f'letter-probability matrix: alength= {len(letters)} w= {self.length} '
                f'nsites= {self.n_sites} E= 0\n{rows}\n')

    def logo(self, path, colors=None, title=None, per_row=None):
        """Write the sequence logo (information content, bits) as a PNG; marginal logos stacked
        for product alphabets.

        ``per_row``: wrap a long motif (an optimized input over a whole sequence) into rows of
        this many positions, numbered as in the whole motif, so that its letters stay legible
        instead of one strip thousands of pixels wide.
        """
        from matplotlib.figure import Figure
        parts = self.marginals() or (self,)
        wrap = per_row is not None and self.length > per_row
        starts = range(0, self.length, per_row) if wrap else [0]
        width = (1.2 + 0.25 * per_row) if wrap else min(30.0, max(4.0, 1.2 + 0.4 * self.length))
        panels = [(start, part) for start in starts for part in parts]
        figure = Figure(figsize=(width, (1.5 if wrap else 1.9) * len(panels)), dpi=100,
                        layout='constrained')
        for i, (start, part) in enumerate(panels):
            ax = figure.add_subplot(len(panels), 1, i + 1)
            stop = start + per_row if wrap else self.length
            piece = part if not wrap else Motif(part.alphabet, part.pwm[start:stop], part.name)
            draw_logo(ax, piece, colors, offset=start)
            if wrap:  # every row on the same scale, the last one shorter
                ax.set_xlim(-0.5, per_row - 0.5)
            if title and i == 0:
                ax.set_title(title, fontsize=9)
        save_figure(figure, path)
        return path


def meme_alphabet(symbols):
    """The letters of a MEME alphabet and the column order that puts the motif's in it.

    DNA, RNA and protein letters go in their alphabetical (MEME) order; other one-letter
    alphabets keep theirs.
    """
    if any(len(s) != 1 for s in symbols):
        raise ValueError(f'MEME letters are single characters, the alphabet has '
                         f'{list(symbols)!r}; for sequence/structure motifs write '
                         f'motif.marginals()[0]')
    letters = ''.join(sorted(symbols)) if ''.join(sorted(symbols)) in (DNA, RNA, PROTEIN) \
        else ''.join(symbols)
    return letters, [symbols.index(letter) for letter in letters]


def meme_text(motifs, background=None):
    """MEME version 4 text of ``motifs`` (one alphabet), in the order given.

    Parameters
    ----------
    motifs: list of Motif
    background: array, shape=(|alphabet|,), optional
        Letter frequencies in the motifs' alphabet order; default uniform.
    """
    motifs = list(motifs)
    if not motifs:
        raise ValueError('meme_text needs at least one motif')
    symbols = motifs[0].alphabet
    if any(m.alphabet != symbols for m in motifs):
        raise ValueError('all motifs of one MEME file must share one alphabet')
    letters, order = meme_alphabet(symbols)
    background = np.full(len(symbols), 1 / len(symbols)) if background is None else \
        np.asarray(background, dtype=np.float64) / np.sum(background)
    if letters in (DNA, RNA, PROTEIN):
        head = f'ALPHABET= {letters}\n\n'
        head += {DNA: 'strands: + -\n\n', RNA: 'strands: +\n\n'}.get(letters, '')
    else:  # MEME's custom alphabet definition
        head = 'ALPHABET "custom"\n' + ''.join(f'{c}\n' for c in letters) + 'END ALPHABET\n\n'
    frequencies = ' '.join(f'{c} {background[i]:.6f}' for c, i in zip(letters, order))
    text = f'MEME version 4\n\n{head}Background letter frequencies\n{frequencies}\n\n'
    return text + '\n'.join(m.to_meme() for m in motifs)


def write_meme(motifs, path, background=None):
    """Write ``motifs`` to ``path`` in MEME version 4 format (see :func:`meme_text`)."""
    text = meme_text(motifs, background)
    files.atomic_write(path, lambda f: f.write(text))
    return path


def save_figure(figure, path):
    """Write a matplotlib ``Figure`` as a PNG, atomically."""
    files.atomic_write(path, lambda f: figure.savefig(f, format='png'), mode='wb')
    return path
