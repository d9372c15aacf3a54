"""The results directory: where every file lives, and writes that never leave half a file.

Layout under ``--result``::

    search.json                  the search's settings (seed, R, η, …)
    search.csv                   one row per rung evaluation: trial, bracket, rung, epochs,
                                 reward, status
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

Every write goes to a temporary file in the same folder, then ``os.replace`` swaps it in.
"""
import contextlib
import csv
import fcntl
import io
import json
import math
import os
import tempfile

import torch

SEARCH_COLUMNS = ['trial', 'bracket', 'rung', 'epochs', 'reward', 'status']


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's files are private (0600)


def atomic_write(path, write, mode='w'):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then replace ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
    os.chmod(tmp, _FILE_MODE)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    atomic_write(path, lambda f: f.write(text + '\n'))


def _json_default(value):
    if hasattr(value, 'item'):  # numpy scalars in a user's config
        return value.item()
    if hasattr(value, 'tolist'):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON-serialisable')


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def write_csv(path, rows, columns):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in columns})
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _cell(value):
    if value is None:
        return ''
    if isinstance(value, float):
        return repr(float(value))  # round-trips exactly (and np.float64 prints as a number)
    return value


def read_csv(path):
    """Rows as dicts; numeric cells become int or float, empty cells None."""
    with open(path, newline='') as handle:
        return [{key: _parse(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


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
    return torch.load(path, map_location=map_location, weights_only=True)


def link_checkpoint(source, target):
    """Make ``target`` the same checkpoint as ``source`` atomically (hard link, else a copy)."""
    folder = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(folder, f'.{os.path.basename(target)}.link.tmp')
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
        """Hold the directory for this process; a second process gets a clear error.

        An ``flock`` on ``.lock``: the operating system releases it when the process ends, even
        by SIGKILL, so a crashed run never leaves a stale lock behind.
        """
        os.makedirs(self.root, exist_ok=True)
        path = self.path('.lock')
        handle = open(path, 'a+')
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or 'another process'
                raise RuntimeError(f'{self.root} is in use by {owner}; wait for it to finish, '
                                   f'or use another --result') from None
            handle.seek(0)
            handle.truncate()
            handle.write(f'process {os.getpid()}')
            handle.flush()
            yield self
        finally:
            handle.close()

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
        return {(row['trial'], row['epochs']): row for row in read_csv(self.search_csv)}

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
