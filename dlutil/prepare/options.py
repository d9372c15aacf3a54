"""The options of ``prepare``'s output, checked together, and the :class:`Splitter` they set up:
which of ``train``/``valid``/``test`` (or ``all``) a row goes to.
"""
import difflib

import numpy as np

from dlutil.sequences.onehot import UNKNOWN_POLICIES
from dlutil.sequences.readers import InputError

SPLITS = ('train', 'valid', 'test')
TASKS = ('auto', 'class', 'multilabel', 'regression')
LAYOUTS = ('4,L', '4,1,L')
OPTION_DEFAULTS = {'split': 'random', 'valid': 0.1, 'test': 0.1, 'seed': 0, 'valid_chroms': (),
                   'test_chroms': (), 'layout': '4,L', 'iupac': 'uniform', 'chunk_rows': 256,
                   'compression': None, 'shuffle_mb': 64, 'progress': None}


def check_options(options):
    """The output options with defaults filled in; every problem reported at once.

    Parameters
    ----------
    options: dict
        Any of ``OPTION_DEFAULTS``: ``split`` ('random', 'chrom' or 'none'), ``valid`` and
        ``test`` (fractions, for 'random'), ``seed`` (for 'random'), ``valid_chroms`` and
        ``test_chroms`` (lists, for 'chrom'), ``layout`` ('4,L' or '4,1,L'), ``iupac``
        ('uniform' or 'fractional'), ``chunk_rows`` (rows per HDF5 chunk and per write),
        ``compression`` (None, 'lzf' or 'gzip', of ``data``), ``shuffle_mb`` (memory for
        writing ``train.h5`` in a random order, see :mod:`dlutil.prepare.shuffle`; 0 keeps the
        input order), ``progress`` (True, False, or
        None: a progress bar on a terminal only).

    Returns
    -------
    dict: every option, checked

    Raises
    ------
    TypeError: an option that does not exist, with a "did you mean"
    InputError: all the bad values, in one message
    """
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        hints = [difflib.get_close_matches(k, OPTION_DEFAULTS, n=1) for k in unknown]
        raise TypeError(f'unknown options {unknown}' + ''.join(
            f'; did you mean {h[0]!r}?' for h in hints if h))
    o = dict(OPTION_DEFAULTS, **options)
    o['valid_chroms'], o['test_chroms'] = list(o['valid_chroms']), list(o['test_chroms'])
    problems = []
    if o['split'] not in ('random', 'chrom', 'none'):
        problems.append(f"--split must be random, chrom or none, got {o['split']!r}")
    if o['split'] == 'random':
        for key in ('valid', 'test'):
            if not 0 <= o[key] < 1:
                problems.append(f'--{key} must be a fraction in [0, 1), got {o[key]}')
        if o['valid'] + o['test'] >= 1:
            problems.append(f"--valid {o['valid']} + --test {o['test']} leave no training rows")
    if o['split'] == 'chrom':
        both = set(o['valid_chroms']) & set(o['test_chroms'])
        if both:
            problems.append(f'--valid-chroms and --test-chroms share {sorted(both)}')
        if not o['valid_chroms'] and not o['test_chroms']:
            problems.append('--split chrom needs --valid-chroms and/or --test-chroms')
    elif o['valid_chroms'] or o['test_chroms']:
        problems.append(f"--valid-chroms/--test-chroms need --split chrom, not {o['split']}")
    if o['layout'] not in LAYOUTS:
        problems.append(f"--layout must be 4,L or 4,1,L, got {o['layout']!r}")
    if o['iupac'] not in UNKNOWN_POLICIES:
        problems.append(f"--iupac must be one of {', '.join(UNKNOWN_POLICIES)}, "
                        f"got {o['iupac']!r}")
    if not isinstance(o['chunk_rows'], int) or o['chunk_rows'] < 1:
        problems.append(f"--chunk-rows must be a positive integer, got {o['chunk_rows']!r}")
    if not isinstance(o['shuffle_mb'], (int, float)) or o['shuffle_mb'] < 0:
        problems.append(f"--shuffle-mb must be a number >= 0, got {o['shuffle_mb']!r}")
    if o['compression'] not in (None, 'none', 'lzf', 'gzip'):
        problems.append(f"--compression must be none, lzf or gzip, got {o['compression']!r}")
    if problems:
        raise InputError('; '.join(problems))
    o['compression'] = None if o['compression'] == 'none' else o['compression']
    return o


class Splitter:
    """Which file a row goes to: by chromosome, at random, or ``all``.

    At random, each row is drawn on its own, in input order, from a generator seeded with
    ``seed``: the same input and seed give the same split, and the sizes are close to (not
    exactly) the fractions. Called as ``splitter(chrom)`` -> 'train', 'valid', 'test' or 'all'.
    """

    def __init__(self, o):
        self.method = o['split']
        self.o = o
        self.rng = np.random.default_rng(o['seed'])
        if self.method == 'none':
            self.names = ('all',)
        elif self.method == 'random':
            self.names = tuple(s for s in SPLITS if s == 'train' or o[s] > 0)
        else:
            self.names = tuple(s for s in SPLITS if s == 'train' or o[f'{s}_chroms'])
        self.chroms = {c: s for s in ('valid', 'test') for c in o[f'{s}_chroms']}

    def __call__(self, chrom=None):
        if self.method == 'none':
            return 'all'
        if self.method == 'chrom':
            return self.chroms.get(chrom, 'train')
        u = self.rng.random()
        return 'test' if u < self.o['test'] else 'valid' if u < self.o['test'] + self.o['valid'] \
            else 'train'

    def describe(self):
        o = self.o
        if self.method == 'chrom':
            return {'method': 'chrom', 'valid_chroms': o['valid_chroms'],
                    'test_chroms': o['test_chroms']}
        if self.method == 'random':
            return {'method': 'random', 'valid': o['valid'], 'test': o['test'], 'seed': o['seed']}
        return {'method': 'none'}

    def why_empty(self, split, total):
        if split == 'train':
            return 'every row went to valid or test'
        if self.method == 'chrom':
            return f'no row is on --{split}-chroms {",".join(self.o[f"{split}_chroms"])}'
        return f'--{split} {self.o[split]} of {total} rows drew none; use more rows or a larger ' \
               f'fraction'
