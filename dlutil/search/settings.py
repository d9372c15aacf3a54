"""A search's settings (``search.json``): flags taken from it, changes checked against it.

- Flags a user leaves out on an existing search are taken from its ``search.json`` (one line
  says which); a flag given with another value is a change.
- A change (flags, def.py, environment, ``--data``) is refused while the search holds results
  that depend on it: any rung evaluation that succeeded. Otherwise (nothing ran, or only
  failures) the search starts again with the new settings, and its old files move aside, as
  ``--restart`` does on purpose: to ``RESULT.<timestamp>``, never deleted.
- ``search.json`` is written only once the run is validated (:meth:`Settings.write`).

:class:`SearchSettings` carries what one search run was asked for (the command line's flags) to
the search and its executor, as one object.
"""
import dataclasses
import logging
import os
import random
import re
import time
from dataclasses import dataclass

from dlutil.errors import SearchSettingsError  # noqa: F401 (re-exported)
from dlutil.search import fingerprint, results
from dlutil.threads import default_threads

log = logging.getLogger('dlutil')

# flag -> default, for flags a continued search takes from search.json (threads: None is
# dlutil.threads' choice, recorded in search.json as the number it chose)
DEFAULTS = {'epoch': 27, 'eta': 3, 'batch_size': 128, 'sampler': 'random', 'trials': None,
            'seed': None, 'threads': None}
SPELLING = {'epoch': '--epoch', 'eta': '--eta', 'batch_size': '--batch-size',
            'sampler': '--sampler', 'trials': '--trials', 'seed': '--seed',
            'threads': '--threads'}
SEARCH_FLAGS = ('epoch', 'eta', 'batch_size', 'sampler', 'trials', 'threads')
# flags a search.json of an older version may lack: compared only when it has them
RECORDED_LATER = ('threads',)


@dataclass(frozen=True)
class SearchSettings:
    """What a search run was asked for: the command line's search flags, as one object.

    Parameters
    ----------
    max_epochs: int
        Hyperband's R (``--epoch``).
    eta: int
        Hyperband's η (``--eta``).
    seed: int or None
        ``--seed``; None reuses the seed of an existing search, or draws a new one.
    batch_size: int
    data_dir: str
    device: torch.device, str or None
        Where trials train in this process (one worker).
    workers: int
        Worker processes (``--workers``); 1 trains in this process.
    devices: list or None
        Devices for worker processes, handed out in turn (default: ``[device]``).
    sampler: str
        ``'random'`` or ``'tpe'``.
    trials: int or None
        Budget of configurations (``--trials``).
    threads: int or None
        torch CPU threads per trial (``--threads``); None: the existing search's, else
        :func:`dlutil.threads.default_threads` (see :func:`choose_threads`).
    ray: str or None
        Run trials as Ray tasks (``--ray``): ``'auto'``, ``'HOST:PORT'``, or ``''`` for
        ``RAY_ADDRESS`` (else a new local Ray); None runs them here.
    gpus_per_trial: float or None
        GPUs a Ray task asks for (``--gpus-per-trial``); None: 1 on a cluster with GPUs.
    ddp: int
        Processes per trial (``--ddp``).
    report_every: float
        Seconds between rewrites of ``report.html`` while searching.
    restart: bool
        ``--restart``: move an existing search aside and start afresh.
    keep_checkpoints: str
        ``--keep-checkpoints``: ``'all'``, ``'best'`` or ``'none'``.
    init: dlutil.training.initial_weights.WeightInit or None
        ``--init-from``: every trial starts from these weights (recorded in ``search.json``).
    config: dict or None
        ``--config``: the one configuration trained (recorded in ``search.json``).
    """
    max_epochs: int = DEFAULTS['epoch']
    eta: int = DEFAULTS['eta']
    seed: int = None
    batch_size: int = DEFAULTS['batch_size']
    data_dir: str = '.'
    device: object = None
    workers: int = 1
    devices: list = None
    sampler: str = DEFAULTS['sampler']
    trials: int = None
    threads: int = None
    ray: str = None
    gpus_per_trial: float = None
    ddp: int = 1
    report_every: float = 30.0
    restart: bool = False
    keep_checkpoints: str = 'best'
    init: object = None
    config: dict = None

    @property
    def flags(self):
        """``{name: value}`` of :data:`SEARCH_FLAGS`, as ``search.json`` records them (and
        ``init``, ``config`` when given)."""
        flags = {'epoch': self.max_epochs, 'eta': self.eta, 'batch_size': self.batch_size,
                 'sampler': self.sampler, 'trials': self.trials, 'threads': self.threads}
        if self.init is not None:
            flags['init'] = self.init.describe()
        if self.config is not None:
            flags['config'] = self.config
        return flags

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def choose_threads(threads, workers=1, ray=False):
    """``--threads``, or the default: 1 per Ray task, else :func:`dlutil.threads.default_threads`
    for ``workers`` worker processes (said in one line)."""
    if threads is not None:
        return threads
    if ray:
        threads, why = 1, 'one per Ray task'
    else:
        threads, why = default_threads(workers)
    log.info(f'torch CPU threads per trial: {threads} ({why}; --threads T to choose)')
    return threads


def read(store):
    """``search.json`` of ``store``, or None."""
    path = store.path('search.json')
    return results.read_json(path) if os.path.exists(path) else None


def fill_flags(args, store):
    """Set the flags ``args`` leaves as None: from the search in ``store``, else the defaults.

    Returns the names taken from ``search.json`` (and says so in one line).
    """
    saved = read(store) or {}
    taken = []
    for name, default in DEFAULTS.items():
        if getattr(args, name, None) is not None:
            continue
        if name in saved and saved[name] is not None and saved[name] != default:
            setattr(args, name, saved[name])
            taken.append(name)
        else:
            setattr(args, name, saved.get(name, default))
    if taken:
        log.info(f'{store.path("search.json")}: using its '
                 + ', '.join(f'{SPELLING[n].split("/")[-1]} {getattr(args, n)}' for n in taken)
                 + ' (flags left out are taken from search.json)')
    return taken


def archive(store):
    """Move everything in ``store`` (but its lock) to ``<root>.<timestamp>``; returns that path."""
    stamp = time.strftime('%Y%m%d-%H%M%S')  # the names ours() knows
    target, number = f'{store.root}.{stamp}', 1
    while os.path.exists(target):
        number += 1
        target = f'{store.root}.{stamp}-{number}'
    os.makedirs(target)
    for name in sorted(os.listdir(store.root)):
        if name != '.lock':
            os.replace(store.path(name), os.path.join(target, name))
    return target


class Settings:
    """The settings of the search about to run, checked against the recorded ones.

    Parameters
    ----------
    store: results.ResultStore
    def_path, data_dir: str
    flags: dict
        ``{name: value}`` for :data:`SEARCH_FLAGS`.
    seed: int or None
        None: the recorded seed, or a new one.
    restart: bool
        ``--restart``: start afresh even though results depend on the old settings.
    """

    def __init__(self, store, def_path, data_dir, flags, seed=None, restart=False):
        self.store, self.flags = store, dict(flags)
        self.now = fingerprint.current(def_path, data_dir, ours(store))
        saved = read(store)
        self.move_aside, self.reason = restart and _has_files(store), '--restart'
        if saved is not None and not restart:
            self._check(saved, seed, def_path)
        if saved is not None and not self.move_aside:
            self.seed = saved['seed'] if seed is None else seed
        else:
            self.seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)

    def _check(self, saved, seed, def_path):
        flags = {name: value for name, value in self.flags.items()
                 if name not in RECORDED_LATER or name in saved}
        saved = {**{k: DEFAULTS[k] for k in SEARCH_FLAGS}, **saved}
        flags = dict(flags, **({'seed': seed} if seed is not None else {}))
        changed = fingerprint.changes(saved, self.now, flags)
        if 'definition' not in saved and saved.get('def_sha256') not in (
                None, fingerprint.file_sha256(def_path)):
            changed.append(f'{self.now["model"]} (changed; recorded by an older version)')
        if not changed:
            return
        finished = [row for row in self.store.read_search().values() if row['status'] == 'ok']
        if finished:
            only_data = changed == fingerprint.data_changes(saved.get('data'), self.now['data'])
            raise SearchSettingsError(
                f'{self.store.root} holds a search made with other settings: '
                + '; '.join(changed) + f'. Its {len(finished)} finished rung evaluations depend '
                'on them. Re-run with the same flags, data and def.py to continue it, add '
                '--restart to start afresh (the old results move to '
                f'{os.path.basename(self.store.root)}.<timestamp>), or use another --result'
                + ('. To evaluate or predict other data with the trained model, leave out -y'
                   if only_data else ''))
        self.move_aside = _has_files(self.store)
        self.reason = ('; '.join(changed) + ' changed, and no rung evaluation had succeeded')

    def write(self):
        """Apply the decision (move the old search aside) and record ``search.json``."""
        if self.move_aside:
            target = archive(self.store)
            log.info(f'starting the search afresh ({self.reason}): the old results are in '
                     f'{target}')
            self.move_aside = False
        results.write_json(self.store.path('search.json'),
                           {**self.flags, 'seed': self.seed, **self.now})


def ours(store):
    """``skip(path)``: true for ``store``'s folder and for the searches :func:`archive` moved
    aside beside it, which are not data even inside ``--data`` (``-d . -r results``)."""
    pattern = re.compile(re.escape(os.path.realpath(store.root)) + r'(\.\d{8}-\d{6}(-\d+)?)?')
    return lambda path: pattern.fullmatch(os.path.realpath(path)) is not None


def _has_files(store):
    return any(name != '.lock' for name in os.listdir(store.root)) \
        if os.path.isdir(store.root) else False


def check_model(store, def_path, data_dir):
    """For ``-e``/``-p``: refuse a def.py or environment that makes the trained model another
    one; say (and go on) when only the loaders or the data changed."""
    saved = read(store)
    if saved is None:
        return
    now = fingerprint.current(def_path, data_dir, ours(store))
    changed = fingerprint.model_changes(saved, now)
    if changed:
        raise SearchSettingsError(
            f'the model in {store.root} was trained with another def.py or environment: '
            + '; '.join(changed) + '. Restore them, or re-run the search (-y --restart)')
    notes = fingerprint.definition_changes(saved.get('definition'), now['definition'])
    notes = [f'{", ".join(notes)} in {def_path}'] if notes else []
    notes += fingerprint.data_changes(saved.get('data'), now['data'])
    if notes:
        log.info('since the search: ' + '; '.join(notes) + ' changed (the trained model is '
                 'the same; its inputs are read with the new loaders and data)')
