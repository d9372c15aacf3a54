"""Writing the one-hot HDF5 files of ``prepare`` as a stream.

A :class:`SplitWriter` buffers a chunk of rows per split (the split chosen by an
:class:`options.Splitter`), one-hot encodes it and appends it to a temporary file in the output
folder, and renames every file into place once all rows are written, ``summary.json`` last (an
old ``summary.json`` is removed first): a folder with a ``summary.json`` holds the files it
describes. The file format is described in :mod:`dlutil.prepare.sequences`.
"""
import json
import os

import h5py
import numpy as np

from dlutil import files
from dlutil.h5output import H5Output
from dlutil.prepare.options import SPLITS
from dlutil.prepare.shuffle import shuffle_rows
from dlutil.sequences.onehot import ALPHABET, BadLetter, encode_batch
from dlutil.sequences.readers import InputError

SHUFFLE_STREAM = 1  # the training rows' order: a stream of --seed apart from the split's


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
        The options, from :func:`options.check_options`.
    task: {'class', 'multilabel', 'regression'} or None
        None: no ``label`` dataset.
    targets, classes: list of str
        From :meth:`labels.LabelFacts.resolve`.
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
        names = [f'{s}.h5' for s in splitter.names] + ['summary.json']
        self.group = files.AtomicFiles(*(os.path.join(out_dir, n) for n in names))
        self.tmp = dict(zip(names, self.group.temporaries))  # final name -> temporary path
        # train.h5 is shuffled from a file in input order, which is never renamed into place
        self.shuffled = 'train' in splitter.names and o['shuffle_mb'] > 0
        self.unshuffled = files.AtomicFiles(os.path.join(out_dir, 'train.h5')) \
            if self.shuffled else None
        self.outputs = {}  # split -> H5Output
        self._x = None
        width = len(self.classes) if task == 'class' else len(self.targets)
        self.stats = {s: np.zeros((3, width)) for s in splitter.names}

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            return
        for output in self.outputs.values():
            output.abandon()
        try:
            if self.unshuffled is not None:
                self.unshuffled.abandon()
            self.group.abandon(error)  # a disk fault: raised as a StorageError naming the file
        finally:
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
        if split in self.outputs:
            return self.outputs[split].file
        tmp = self.unshuffled.temporaries[0] if split == 'train' and self.shuffled \
            else self.tmp[f'{split}.h5']
        self.outputs[split] = H5Output(tmp, os.path.join(self.out_dir, f'{split}.h5'))
        f = self.outputs[split].file
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
            x = encode_batch([row[0] for row in buffer], unknown=self.o['iupac'],
                             out=self._x[:k])
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
        self.outputs[split].check()  # a full disk stops here, naming the file
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
            attrs = {'alphabet': ALPHABET, 'layout': self.o['layout'], 'length': self.length,
                     'iupac': self.o['iupac'], 'split': split, 'task': self.task or 'none',
                     'targets': self.targets, 'classes': self.classes or []}
            self.outputs[split].file.attrs.update(attrs)
            self.outputs[split].close()
            if split == 'train' and self.shuffled:  # in input order, --one-per-class would
                with H5Output(self.tmp['train.h5'], self.outputs[split].path) as target:
                    shuffle_rows(self.unshuffled.temporaries[0], target,  # sort it by class
                                 [self.o['seed'], SHUFFLE_STREAM], self.o['shuffle_mb'])
                self.unshuffled.abandon()
            summary['files'][split] = {'path': f'{split}.h5', 'rows': self.rows[split],
                                       'order': f'shuffled (--seed {self.o["seed"]})'
                                       if split == 'train' and self.shuffled else 'input'}
            if self.task:
                summary['files'][split]['labels'] = self._balance(split)
        with open(self.tmp['summary.json'], 'w', encoding='utf-8') as handle:
            handle.write(json.dumps(summary, indent=2) + '\n')
        self.group.commit()  # the .h5 files, then summary.json
        return summary
