"""Writing the one-hot HDF5 files of ``prepare.py`` as a stream.

Rows go to ``train``/``valid``/``test`` (or ``all``) by a :class:`Splitter`; a
:class:`SplitWriter` buffers a chunk of rows per split, one-hot encodes it and appends it to a
temporary file in the output folder, and renames every file into place once all rows are written,
with ``summary.json`` beside them. :class:`LabelFacts` decides how labels are stored (class
indices, 0/1 targets or regression values). The file format is described in :mod:`prepare`.
"""
import difflib
import json
import math
import os
import tempfile

import h5py
import numpy as np

from dlutil.prepare.shuffle import shuffle_rows
from dlutil.sequences.onehot import ALPHABET, IUPAC_MODES, BadLetter, encode_batch
from dlutil.sequences.readers import InputError

SPLITS = ('train', 'valid', 'test')
SHUFFLE_STREAM = 1  # the training rows' order: a stream of --seed apart from the split's
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
        input order), ``progress`` (True, False, or None: a progress bar on a terminal only).

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
    if o['iupac'] not in IUPAC_MODES:
        problems.append(f"--iupac must be uniform or fractional, got {o['iupac']!r}")
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


class LabelFacts:
    """What the label values allow (class indices? 0/1?), with a counter-example for errors.

    Fed block by block (:meth:`update`), so a streamed input needs no second copy of its labels;
    :meth:`resolve` then picks how they are stored.
    """

    def __init__(self):
        self.max, self.not_binary, self.not_class = -math.inf, None, None

    def update(self, values, where):
        """``values`` shape=(n, targets); ``where(i)`` names row i's place in the input."""
        if not values.size:
            return
        self.max = max(self.max, float(values.max()))
        for attr, bad in (('not_binary', (values != 0) & (values != 1)),
                          ('not_class', (values < 0) | (values != np.round(values)))):
            rows = np.flatnonzero(bad.any(1))
            if getattr(self, attr) is None and len(rows):
                i = rows[0]
                setattr(self, attr, f'{where(i)} has {values[i][bad[i]][0]:g}')

    def resolve(self, task, targets, class_names=None):
        """How the labels are stored.

        Parameters
        ----------
        task: {'auto', 'class', 'multilabel', 'regression'}
            ``auto``: 0/1 values are a class (one target) or multi-label (several targets),
            anything else regression.
        targets: list of str
        class_names: list of str or None
            For 'class': default '0', '1', ... up to the largest label.

        Returns
        -------
        (task, classes): classes is None unless the task is 'class'
        """
        if task not in TASKS:
            raise InputError(f'--task must be one of {", ".join(TASKS)}, got {task!r}')
        if task == 'auto':
            task = 'regression' if self.not_binary else \
                'class' if len(targets) == 1 else 'multilabel'
        if task == 'class':
            if len(targets) != 1:
                raise InputError(f'--task class needs one label column, got {len(targets)}: '
                                 f'{targets}')
            if self.not_class:
                raise InputError(f'--task class needs class indices 0, 1, 2, ...: '
                                 f'{self.not_class}')
            n_classes = int(self.max) + 1
            if class_names is not None and len(class_names) < n_classes:
                raise InputError(f'--class-names gives {len(class_names)} names but the labels '
                                 f'go up to class {n_classes - 1}')
            return task, list(class_names or [str(k) for k in range(max(n_classes, 2))])
        if class_names:
            raise InputError(f'--class-names is for --task class, and this task is {task}')
        if task == 'multilabel' and self.not_binary:
            raise InputError(f'--task multilabel needs 0/1 labels: {self.not_binary}')
        return task, None


class SplitWriter:
    """The files of one run: a temporary HDF5 file per split in ``out_dir``, appended
    ``chunk_rows`` rows at a time and renamed by :meth:`commit` when every input has been read.

    Rows wait in a small per-split buffer as raw letters and are one-hot encoded a chunk at a
    time, so memory stays at a few chunks whatever the size of the input. Used as a context
    manager: leaving it on an error removes the temporary files.

    Parameters
    ----------
    out_dir: str
    splitter: Splitter
    o: dict
        The options, from :func:`check_options`.
    task: {'class', 'multilabel', 'regression'} or None
        None: no ``label`` dataset.
    targets, classes: list of str
        From :meth:`LabelFacts.resolve`.
    intervals: bool
        Write the ``chrom``, ``start`` and ``end`` datasets (BED input).
    length: int or None
        Sequence length; None takes the first row's.
    """

    def __init__(self, out_dir, splitter, o, task=None, targets=(), classes=None,
                 intervals=False, length=None):
        self.out_dir, self.splitter, self.o = os.fspath(out_dir), splitter, o
        self.task, self.targets, self.classes = task, list(targets), classes
        self.intervals, self.length = intervals, length
        self._created = not os.path.isdir(out_dir)  # removed again if this run fails
        os.makedirs(out_dir, exist_ok=True)
        stale = [f'{s}.h5' for s in SPLITS + ('all',) if s not in splitter.names
                 and os.path.exists(os.path.join(out_dir, f'{s}.h5'))]
        if stale:
            raise InputError(f'{out_dir} has {", ".join(stale)} from an earlier run, which this '
                             f'run would not replace; remove it or choose another --out')
        self.buffers = {s: [] for s in splitter.names}
        self.rows = dict.fromkeys(splitter.names, 0)
        self.files, self.tmp = {}, {}  # split -> open file; final name -> temporary path
        self._x = None
        width = len(self.classes) if task == 'class' else len(self.targets)
        self.stats = {s: np.zeros((3, width)) for s in splitter.names}

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        for f in self.files.values():
            f.close()
        if kind is None:
            return
        for path in self.tmp.values():
            if os.path.exists(path):
                os.remove(path)
        if self._created and not os.listdir(self.out_dir):
            os.rmdir(self.out_dir)

    def add(self, split, seq, name, where, labels=None, interval=None):
        """Queue one row: ``seq`` bytes, ``where`` names its place in the input for errors."""
        if self.length is None:
            self.length = len(seq)
        if len(seq) != self.length:
            raise InputError(f'{where}: sequence has length {len(seq)} but the first has '
                             f'{self.length}; all must have one length, or give --length '
                             f'to resize them around their centre')
        self.buffers[split].append((seq, name, where, labels, interval))
        if len(self.buffers[split]) >= self.o['chunk_rows']:
            self._flush(split)

    def _file(self, split):
        if split in self.files:
            return self.files[split]
        tmp = self.tmp[f'{split}.h5'] = _temporary(self.out_dir, f'{split}.h5')
        f = self.files[split] = h5py.File(tmp, 'w')
        chunk = self.o['chunk_rows']
        row = (4, self.length) if self.o['layout'] == '4,L' else (4, 1, self.length)
        columns = [('data', row, 'float32'), ('name', (), h5py.string_dtype())]
        if self.task:
            label_row = () if self.task == 'class' or len(self.targets) == 1 else \
                (len(self.targets),)
            columns.append(('label', label_row, 'int64' if self.task == 'class' else 'float32'))
        if self.intervals:
            columns += [('chrom', (), h5py.string_dtype()), ('start', (), 'int64'),
                        ('end', (), 'int64')]
        for key, shape, dtype in columns:
            f.create_dataset(key, shape=(0,) + shape, maxshape=(None,) + shape, dtype=dtype,
                             chunks=(chunk,) + shape,
                             compression=self.o['compression'] if key == 'data' else None)
        return f

    def _flush(self, split):
        buffer = self.buffers[split]
        if not buffer:
            return
        f, n, k = self._file(split), self.rows[split], len(buffer)
        if self._x is None:  # one buffer for every chunk: fresh arrays cost page faults
            self._x = np.empty((self.o['chunk_rows'], 4, self.length), np.float32)
        try:
            x = encode_batch([row[0] for row in buffer], self.o['iupac'], self._x[:k])
        except BadLetter as bad:
            raise InputError(f'{buffer[bad.row][2]}: {bad}') from None
        columns = {'data': x.reshape((k,) + f['data'].shape[1:]),
                   'name': [row[1] for row in buffer]}
        if self.task:
            y = np.array([row[3] for row in buffer], np.float64).reshape(k, -1)
            columns['label'] = y.reshape((k,) + f['label'].shape[1:])
            self._count(split, y)
        if self.intervals:
            for i, key in enumerate(('chrom', 'start', 'end')):
                columns[key] = [row[4][i] for row in buffer]
        for key, values in columns.items():
            f[key].resize(n + k, axis=0)
            f[key][n:n + k] = values
        self.rows[split] = n + k
        buffer.clear()

    def _count(self, split, y):
        stats = self.stats[split]
        if self.task == 'class':
            stats[0] += np.bincount(y[:, 0].astype(np.int64), minlength=stats.shape[1])
        else:
            stats += [y.sum(0), (y * y).sum(0), (y != 0).sum(0)]

    def _balance(self, split):
        stats, n = self.stats[split], self.rows[split]
        if self.task == 'class':
            return {'counts': dict(zip(self.classes, stats[0].astype(int).tolist()))}
        if self.task == 'multilabel':
            return {'positives': dict(zip(self.targets, stats[2].astype(int).tolist()))}
        mean = stats[0] / n
        sd = np.sqrt(np.maximum(stats[1] / n - mean ** 2, 0))
        return {'mean': dict(zip(self.targets, mean.round(6).tolist())),
                'sd': dict(zip(self.targets, sd.round(6).tolist()))}

    def commit(self, summary):
        """Write the last rows, rename every file into place and write ``summary.json``.

        Returns
        -------
        dict: ``summary`` with the files, rows, label balance, length and layout added
        """
        for split in self.splitter.names:
            self._flush(split)
        total = sum(self.rows.values())
        if not total:
            raise InputError(f'no rows to write from {summary["inputs"]} (skipped: '
                             f'{summary.get("skipped")})')
        for split, n in self.rows.items():
            if not n:
                raise InputError(f'the {split} split is empty: '
                                 f'{self.splitter.why_empty(split, total)}')
        summary = dict(summary, length=self.length, layout=self.o['layout'],
                       alphabet=ALPHABET, iupac=self.o['iupac'], task=self.task,
                       targets=self.targets, classes=self.classes,
                       split=self.splitter.describe(), rows=total, files={})
        for split in self.splitter.names:
            f = self.files[split]
            attrs = {'alphabet': ALPHABET, 'layout': self.o['layout'], 'length': self.length,
                     'iupac': self.o['iupac'], 'split': split, 'task': self.task or 'none',
                     'targets': self.targets, 'classes': self.classes or []}
            f.attrs.update(attrs)
            f.close()
            shuffled = split == 'train' and self.o['shuffle_mb'] > 0
            if shuffled:  # in input order, --one-per-class would sort it by class
                shuffle_rows(self.tmp['train.h5'], [self.o['seed'], SHUFFLE_STREAM],
                             self.o['shuffle_mb'])
            summary['files'][split] = {'path': f'{split}.h5', 'rows': self.rows[split],
                                       'order': f'shuffled (--seed {self.o["seed"]})'
                                       if shuffled else 'input'}
            if self.task:
                summary['files'][split]['labels'] = self._balance(split)
        text = json.dumps(summary, indent=2) + '\n'
        tmp = self.tmp['summary.json'] = _temporary(self.out_dir, 'summary.json')
        with open(tmp, 'w') as handle:
            handle.write(text)
        for name, tmp in self.tmp.items():
            os.replace(tmp, os.path.join(self.out_dir, name))
        return summary


def _temporary(folder, name):
    """A new empty file ``folder/.NAME.*.tmp`` with a normal file's mode: hidden, so a glob
    like ``train.h5*`` never picks up a half-written file."""
    fd, path = tempfile.mkstemp(dir=folder, prefix=f'.{name}.', suffix='.tmp')
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes it private
    return path


