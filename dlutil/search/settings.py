"""A search's settings (``search.json``): flags taken from it, changes checked against it.

- Flags a user leaves out on an existing search are taken from its ``search.json`` (one line
  says which); a flag given with another value is a change.
- A change (flags, def.py, environment, ``--data``'s content) is refused while the search holds
  results that depend on it: any rung evaluation that succeeded. Otherwise (nothing ran, or only
  failures) the search starts again with the new settings, and its old files move aside, as
  ``--restart`` does on purpose: to ``RESULT.<timestamp>``, never deleted.
- Whether a change of def.py, environment or data alters what the finished evaluations computed
  cannot be told from the files (a fix for configurations that failed does not; a change to
  the network does), so the results tell: :meth:`Settings.verified` has finished evaluations
  trained again with the new files (:mod:`dlutil.search.replay`). The same results: the
  search continues, keeping them, and failed evaluations run again with the new files. Others:
  refused, unless ``--keep-results`` (the user vouches for the change); ``--restart`` starts
  afresh. ``search.csv``'s ``def_version`` column and ``search.json``'s ``def_versions`` say
  which def.py made each row. A flag that changes the plan or the training (``--epoch``,
  ``--eta``, …) is refused with the reason.
- ``--trials`` larger than the search was planned with is no change: it adds configurations
  (Hyperband iterations) to the plan, which keeps every recorded rung evaluation.
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
from dlutil.search import fingerprint, results, schedule
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
# why a changed flag cannot keep the finished rung evaluations (said when it is refused)
WHY = {
    'epoch': 'R sets the brackets: how many configurations each starts and the epochs of every '
             'rung, so the finished rung evaluations belong to no bracket of the new plan '
             '(--trials N adds configurations to the same brackets)',
    'eta': 'eta sets the brackets: how many configurations each starts and the epochs of every '
           'rung (--trials N adds configurations to the same brackets)',
    'batch_size': 'the trials trained with the other batch size',
    'sampler': 'the configurations were drawn by the other sampler',
    'seed': 'the seed draws every configuration and the trials\' weights',
    'threads': 'another thread count may change the last bits of every result',
    'trials': 'a smaller budget leaves out configurations that ran',
}


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
    keep_results: bool
        ``--keep-results``: continue a search whose def.py, environment or data changed,
        keeping its finished rung evaluations.
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
    keep_results: bool = False
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
    keep_results: bool
        ``--keep-results``: continue with a changed def.py, environment or data, keeping the
        finished rung evaluations made with the old ones.

    Attributes
    ----------
    version: str
        The def.py's version (:func:`fingerprint.version`), written in each new row of
        ``search.csv``.
    """

    def __init__(self, store, def_path, data_dir, flags, seed=None, restart=False,
                 keep_results=False):
        self.store, self.flags = store, dict(flags)
        self.now = fingerprint.current(def_path, data_dir, ours(store),
                                       store.path(fingerprint.HASH_CACHE))
        self.version = fingerprint.version(self.now['definition'])
        self.saved = saved = read(store)
        self.move_aside, self.reason = restart and _has_files(store), '--restart'
        self.kept = []  # the changes accepted while keeping the finished results
        self.pending = None  # the refusal, unless verified() finds the results the same
        if saved is not None and not restart:
            self._check(saved, seed, def_path, keep_results)
        if saved is not None and not self.move_aside:
            self.seed = saved['seed'] if seed is None else seed
        else:
            self.seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 31)

    def _check(self, saved, seed, def_path, keep_results):
        flags = {name: value for name, value in self.flags.items()
                 if name not in RECORDED_LATER or name in saved}
        saved = {**{k: DEFAULTS[k] for k in SEARCH_FLAGS}, **saved}
        flags = dict(flags, **({'seed': seed} if seed is not None else {}))
        if _grows(saved, flags):
            flags.pop('trials')
        changed_flags = [name for name, value in flags.items() if saved.get(name) != value]
        changed = fingerprint.changes(saved, self.now)
        if 'definition' not in saved and saved.get('def_sha256') not in (
                None, fingerprint.file_sha256(def_path)):
            changed.append(f'{self.now["model"]} (changed; recorded by an older version)')
        moved = fingerprint.data_moved(saved.get('data'), self.now['data'])
        if moved and not fingerprint.data_changes(saved.get('data'), self.now['data']):
            log.info(f'{moved}; its files have the same contents, so the search continues')
        if not changed and not changed_flags:
            return
        search = self.store.read_search().values()
        finished = [row for row in search if row['status'] == 'ok']
        flag_text = [f'{SPELLING[name]} {saved.get(name)} (now {flags[name]}): {WHY[name]}'
                     for name in changed_flags]
        if changed and not changed_flags and keep_results:
            self.kept = changed
            log.info('continuing with ' + '; '.join(changed) + f' (--keep-results): '
                     f'{len(finished)} finished rung evaluations are kept' + self._rows_note())
            return
        if finished and changed_flags:
            raise SearchSettingsError(
                f'{self.store.root} holds a search made with other settings: '
                + '; '.join(flag_text + changed) + f'. Its {len(finished)} finished rung '
                'evaluations depend on them. Re-run with the same flags to continue it '
                '(flags left out are taken from search.json), add --restart to start '
                f'afresh (the old results move to {os.path.basename(self.store.root)}'
                '.<timestamp>), or use another --result')
        if finished:  # the results decide: see verified()
            self.kept, self.pending = changed, self._refusal(saved, changed, search)
            return
        self.move_aside = _has_files(self.store)
        self.reason = ('; '.join([f'{SPELLING[n]} {saved.get(n)} (now {flags[n]})'
                                  for n in changed_flags] + changed)
                       + ' changed, and no rung evaluation had succeeded')

    def _refusal(self, saved, changed, rows):
        """The message refusing ``changed`` while ``rows`` hold finished results."""
        finished = sum(row['status'] == 'ok' for row in rows)
        failed = sum(row['status'] == 'error' for row in rows)
        only_data = changed == fingerprint.data_changes(saved.get('data'), self.now['data'])
        return (f'{self.store.root} holds a search made with another def.py, environment or '
                'data: ' + '; '.join(changed) + f'. Its {finished} finished rung evaluations '
                'were made with them, and {replayed}. Restore them to continue; add '
                '--keep-results if your change does not alter what they computed: they are '
                'kept' + (f' and the {failed} failed ones run again with the new files'
                          if failed else '') + '; add --restart to start afresh (the old '
                f'results move to {os.path.basename(self.store.root)}.<timestamp>); or use '
                'another --result' + ('. To evaluate or predict other data with the trained '
                                      'model, leave out -y' if only_data else ''))

    def verified(self, differs):
        """Settle a change :meth:`_check` left to the results: ``differs()`` replays finished
        rung evaluations with the new files (:func:`dlutil.search.replay.replay`) and returns
        ``(trial, what differs)`` or None. Raises :class:`SearchSettingsError` when one
        differs; says so and goes on when none does."""
        if self.pending is None:
            return
        found = differs()
        if found is not None:
            trial, what = found
            raise SearchSettingsError(self.pending.replace(
                '{replayed}', f'trial {trial} trained again with the new files differs '
                              f'({what})'))
        log.info('continuing with ' + '; '.join(self.kept) + ': finished rung evaluations '
                 'trained again with the new files gave the same results, so the finished '
                 'ones are kept' + self._rows_note())
        self.pending = None

    def _rows_note(self):
        failed = sum(row['status'] == 'error' for row in self.store.read_search().values())
        return ((f'; {failed} failed ones run again with the new files' if failed else '')
                + f'; rows made now have def_version {self.version} in search.csv')

    def write(self):
        """Apply the decision (move the old search aside) and record ``search.json``."""
        saved = self.saved or {}
        if self.move_aside:
            target = archive(self.store)
            log.info(f'starting the search afresh ({self.reason}): the old results are in '
                     f'{target}')
            self.move_aside, saved = False, {}
        versions = dict(saved.get('def_versions', {}))
        old = fingerprint.version(saved.get('definition'))
        if old is not None and old not in versions:  # recorded by an older version
            versions[old] = {'sha256': saved['definition'].get('sha256', saved.get('def_sha256')),
                             'model': saved.get('model')}
        if self.version not in versions:
            versions[self.version] = {'sha256': self.now['definition']['sha256'],
                                      'model': self.now['model'],
                                      'first_run': time.strftime('%Y-%m-%dT%H:%M:%S%z')}
        record = {**self.flags, 'seed': self.seed, **self.now, 'def_versions': versions}
        kept = list(saved.get('kept_results', []))
        if self.kept:
            kept.append({'at': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'changes': self.kept,
                         'def_version': self.version})
        if kept:
            record['kept_results'] = kept
        results.write_json(self.store.path('search.json'), record)


def _grows(saved, flags):
    """True when ``flags`` asks for a larger ``--trials`` budget on the same brackets: more
    configurations, every recorded rung evaluation still in the plan."""
    if flags.get('trials') == saved.get('trials') or flags.get('trials') is None:
        return False
    if (flags['epoch'], flags['eta']) != (saved['epoch'], saved['eta']):
        return False
    before = schedule.totals(saved['epoch'], saved['eta'], saved.get('trials'))[0]
    after = schedule.totals(flags['epoch'], flags['eta'], flags['trials'])[0]
    if after > before:
        log.info(f'--trials {flags["trials"]}: the search grows from {before} to {after} '
                 f'configurations; every rung evaluation recorded so far is kept')
    return after >= before


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
    now = fingerprint.current(def_path, data_dir, ours(store), store.path(fingerprint.HASH_CACHE))
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
