"""The results directory: where every file lives, and writes that never leave half a file.

Layout under ``--result``::

    search.json                  the search's settings (seed, R, η, …)
    search.csv                   one row per rung evaluation: trial, bracket, rung, epochs,
                                 reward, status, def_version (the def.py that made it)
    best.json                    the best trial: trial, config, epoch, reward
    trials/<id>/config.json      the sampled configuration
    trials/<id>/history.csv      one row per trained epoch
    trials/<id>/last.pt          checkpoint of the last epoch (weights, optimizer, RNG, epoch)
    trials/<id>/best.pt          checkpoint of the best epoch (see ``checkpoints`` for what
                                 ``--keep-checkpoints`` leaves of both)
    trials/<id>/error.txt        why a failed trial failed
    test_result.json             ``-e``: test metrics of the best trial
    predictions/<file>.npy       ``-p``: one array per input file (``.h5``, ``.tsv``: with the
                                 rows' names, see ``dlutil.predictions``)

Every write goes to a temporary file in the same folder, then ``os.replace`` swaps it in; text
is UTF-8 whatever the locale. A write that fails for want of disk space or permission raises
:class:`StorageError`, a fault of the machine rather than of a configuration, which stops a
search. A file that cannot be read back raises :class:`CorruptFileError` naming it.
"""
import contextlib
import csv
import fcntl
import glob
import math
import os

import torch

from dlutil import files, torchfile
from dlutil.errors import ResultInUseError
from dlutil.search.fingerprint import HASH_CACHE
from dlutil.files import (TEMPORARY, CorruptFileError, StorageError, atomic_write, read_json, write_csv, write_json,  # noqa: F401
                          guard_writes, storage_error)

SEARCH_COLUMNS = ['trial', 'bracket', 'rung', 'epochs', 'reward', 'status', 'def_version']
# columns a search.csv of an older version may lack (read as empty)
ADDED_COLUMNS = ('def_version',)
# ok; diverged: final (the same configuration diverges again); error: retried by the next run
STATUSES = ('ok', 'diverged', 'error')
#: what a run refused before its search began may leave: its lock and the data hashes it cached;
#: a folder holding nothing else is left as that run found it (see :meth:`ResultStore.lock`)
LEFT_BY_REFUSED_RUN = ('.lock', HASH_CACHE)


def remove_temporaries(root):
    """Delete the temporary files a killed writer left under ``root``; returns how many.

    Call it only while holding the results directory's lock, when nothing else writes there.
    """
    pattern = os.path.join(glob.escape(os.path.abspath(root)), '**', f'.*{TEMPORARY}')
    removed = 0
    for path in glob.glob(pattern, recursive=True):
        if files.in_use(path):  # a --vep or -p writing into this folder now: not the lock's
            continue
        try:
            os.remove(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def read_csv(path, text=()):
    """Rows as dicts; numeric cells become int or float (but in the columns ``text``), empty
    cells None."""
    try:
        with open(path, newline='', encoding='utf-8') as handle:
            rows = list(csv.DictReader(handle))
    except (csv.Error, UnicodeDecodeError) as error:
        raise CorruptFileError(f'{path} is corrupt ({error})') from error
    if any(None in row or None in row.values() for row in rows):
        raise CorruptFileError(f'{path} is corrupt: a row does not have the header\'s columns')
    return [{key: (value or None) if key in text else _parse(value) for key, value in row.items()}
            for row in rows]


def _parse(value):
    if value == '':
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def history_columns(rows):
    """``epoch``, ``train_seconds``, the ``train_*`` and ``val_*`` metrics, ``hyperband_reward``."""
    keys = {key for row in rows for key in row}
    fixed = ['epoch', 'train_seconds']
    middle = sorted(k for k in keys if k.startswith('train_') and k not in fixed)
    middle += sorted(k for k in keys if k.startswith('val_'))
    rest = sorted(keys - set(fixed) - set(middle) - {'hyperband_reward'})
    return fixed + middle + rest + ['hyperband_reward']


def save_checkpoint(path, state):
    atomic_write(path, lambda f: torch.save(state, f), mode='wb')


def load_checkpoint(path, map_location='cpu'):
    """A checkpoint; :class:`CorruptFileError` naming ``path`` when it cannot be read."""
    return torchfile.load(path, 'checkpoint', map_location)


def link_checkpoint(source, target):
    """Make ``target`` the same checkpoint as ``source`` atomically (hard link, else a copy)."""
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.exists(target) and os.path.samefile(source, target):
        return  # already linked; rename() of two links to one file would leave tmp behind
    for check in files._before_write:
        check()
    tmp = os.path.join(folder, f'.{os.path.basename(target)}.link{TEMPORARY}')
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        with open(source, 'rb') as handle:
            data = handle.read()
        atomic_write(target, lambda f: f.write(data), mode='wb')


def trial_id(index):
    """Short trial ids: ``t0000``, ``t0001``, …"""
    return f't{index:04d}'


class ResultStore:
    """Paths and reads/writes of one results directory."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    @contextlib.contextmanager
    def lock(self):
        """Hold the directory for this process; a second process gets :class:`ResultInUseError`.

        An ``flock`` on ``.lock``, which records the holder's PID: the operating system releases
        it when the process ends, even by SIGKILL, so a crashed run never leaves a stale lock
        behind. A directory that was missing or empty (but for :data:`LEFT_BY_REFUSED_RUN`) and
        holds nothing else (but empty folders) on release, as after a run refused before its
        search began, is left as it was: those files go, and so does the directory if this lock
        made it.
        """
        created = not os.path.isdir(self.root)
        empty = created or set(os.listdir(self.root)) <= set(LEFT_BY_REFUSED_RUN)
        handle = self._acquire()
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f'process {os.getpid()}')
            handle.flush()
            yield self
        finally:
            try:
                if empty:
                    self._remove_if_unused(created)  # while the lock is still held
            finally:
                handle.close()

    def _acquire(self):
        """The open ``.lock``, flocked; :class:`ResultInUseError` when another process holds it."""
        path = self.path('.lock')
        while True:
            os.makedirs(self.root, exist_ok=True)
            handle = open(path, 'a+')
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or 'another process'
                handle.close()
                raise ResultInUseError(
                    f'{self.root} is in use by {owner}: another run holds its lock '
                    f'({path}); wait for it to finish, or use another --result') from None
            except BaseException:
                handle.close()
                raise
            try:  # the holder before us may have removed the file it locked: lock the new one
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()

    def _remove_if_unused(self, created):
        """Remove ``.lock``, empty folders and, if ``created``, the directory, when nothing but
        the lock was written there."""
        ours = {self.path(name) for name in LEFT_BY_REFUSED_RUN}
        walk = list(os.walk(self.root, topdown=False))  # children before their parents
        if any(os.path.join(folder, name) not in ours for folder, _, names in walk
               for name in names):
            return
        with contextlib.suppress(OSError):
            for folder, _, _ in walk[:-1]:  # the last is the directory itself
                os.rmdir(folder)
            for path in ours - {self.path('.lock')}:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            os.remove(self.path('.lock'))
            if created:
                os.rmdir(self.root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def trial_dir(self, trial):
        return self.path('trials', trial)

    def trial_file(self, trial, name):
        return os.path.join(self.trial_dir(trial), name)

    # -- search -------------------------------------------------------------------------------
    @property
    def search_csv(self):
        return self.path('search.csv')

    @property
    def best_json(self):
        return self.path('best.json')

    def read_search(self):
        """The rung evaluations recorded so far, as ``{(trial, rung_epochs): row}``."""
        if not os.path.exists(self.search_csv):
            return {}
        rows = read_csv(self.search_csv, text=ADDED_COLUMNS)
        for number, row in enumerate(rows, start=2):
            for column in ADDED_COLUMNS:
                row.setdefault(column, None)
            if set(row) != set(SEARCH_COLUMNS) or not isinstance(row['epochs'], int) \
                    or row['status'] not in STATUSES or not isinstance(row['trial'], str):
                raise CorruptFileError(
                    f'{self.search_csv} is corrupt (line {number}: {row}); expected the '
                    f'columns {",".join(SEARCH_COLUMNS)} with a status of '
                    f'{"/".join(STATUSES)}. Restore it, or re-run with --restart')
        return {(row['trial'], row['epochs']): row for row in rows}

    def write_search(self, rows):
        write_csv(self.search_csv, rows, SEARCH_COLUMNS)

    def read_best(self):
        if not os.path.exists(self.best_json):
            return None
        return read_json(self.best_json)

    # -- trials -------------------------------------------------------------------------------
    def write_config(self, trial, config):
        write_json(self.trial_file(trial, 'config.json'), config)

    def read_config(self, trial):
        return read_json(self.trial_file(trial, 'config.json'))

    def write_history(self, trial, rows):
        write_csv(self.trial_file(trial, 'history.csv'), rows, history_columns(rows))

    def read_history(self, trial):
        path = self.trial_file(trial, 'history.csv')
        return read_csv(path) if os.path.exists(path) else []

    def write_error(self, trial, text):
        atomic_write(self.trial_file(trial, 'error.txt'), lambda f: f.write(text))


def is_failure(reward):
    return reward is None or not math.isfinite(reward)


LINK_TO_LAST = b'\0same as last.pt\0'  # sent for best.pt when the best epoch is the last one


def read_bytes(path):
    with open(path, 'rb') as handle:
        return handle.read()


def trial_files(store, trial, checkpoint=True):
    """What :meth:`ResultSink.put` needs of ``trial`` in the scratch ``store``: {name: bytes}."""
    files, path = {}, store.trial_file
    for name in ('history.csv', 'error.txt'):
        if os.path.exists(path(trial, name)):
            files[name] = read_bytes(path(trial, name))
    if checkpoint and os.path.exists(path(trial, 'last.pt')):
        files['last.pt'] = read_bytes(path(trial, 'last.pt'))
        best = path(trial, 'best.pt')
        if os.path.exists(best) and os.path.samefile(best, path(trial, 'last.pt')):
            files['best.pt'] = LINK_TO_LAST
    return files
