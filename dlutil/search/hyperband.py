"""The Hyperband search: plan brackets, run rung evaluations, promote, record.

The search replays its plan against ``search.csv``: a rung evaluation recorded there is read, not
rerun, so re-running an interrupted search continues it. Trials train from seeds derived from
``--seed`` and their index alone, and a rung's survivors depend only on that rung's rewards, so
the result is the same whatever order rung evaluations finish in, and whatever number of
workers runs them. Brackets are independent and run concurrently; a rung waits only for the rung
before it in its own bracket. With ``--sampler tpe`` a bracket opens once all earlier brackets
are finished, so that its proposals see exactly the same observations on every run.
"""
import concurrent.futures
import logging
import os
import threading
import time
from dataclasses import dataclass

from tqdm.auto import tqdm

from dlutil.search import checkpoints
from dlutil.search import schedule
from dlutil.search import report
from dlutil.search import results
from dlutil.search.best import best_row, write_best
from dlutil.search.settings import SearchSettingsError, Settings  # noqa: F401 (re-exported)
from dlutil import rng
from dlutil.threads import default_threads
from dlutil.search.sampling import Sampler
from dlutil.search.executors import InlineExecutor, Job, PoolExecutor

log = logging.getLogger('dlutil')


@dataclass(frozen=True)
class PlannedBracket:
    """Bracket ``s`` of Hyperband iteration ``iteration``, trials ``first`` … ``first+sizes[0]-1``."""
    position: int
    iteration: int
    s: int
    first: int
    sizes: tuple
    epochs: tuple


def plan(max_epochs, eta, trials=None):
    """The brackets of the search, in order.

    One Hyperband iteration (s = s_max … 0) without ``trials``; with a budget of ``trials``
    configurations, iterations repeat until it is spent, and the last bracket is cut to the
    configurations left (each of its rungs keeps ⌊n·η^(−i)⌋ of them, at least one).
    """
    if trials is not None and trials < 1:
        raise ValueError(f'--trials must be at least 1, got {trials}')
    brackets = schedule.schedule(max_epochs, eta)
    out, used, iteration = [], 0, 0
    while True:
        for bracket in brackets:
            n = bracket.n if trials is None else min(bracket.n, trials - used)
            if n <= 0:
                return out
            sizes = tuple(r.n for r in bracket.rungs) if n == bracket.n else tuple(
                max(1, n // eta ** i) for i in range(len(bracket.rungs)))
            out.append(PlannedBracket(len(out), iteration, bracket.s, used, sizes,
                                      tuple(r.epochs for r in bracket.rungs)))
            used += n
        iteration += 1
        if trials is None:
            return out


class BracketState:
    """Where one bracket stands: its current rung, members and their rewards."""

    def __init__(self, planned):
        self.planned = planned
        self.rung = 0
        self.members = list(range(planned.first, planned.first + planned.sizes[0]))
        self.rewards, self.submitted = {}, set()
        self.finished = False

    @property
    def epochs(self):
        return self.planned.epochs[self.rung]

    def waiting(self):
        """Members of the current rung not yet submitted nor recorded."""
        if self.finished:
            return []
        return [i for i in self.members if i not in self.submitted and i not in self.rewards]

    def record(self, index, row):
        self.rewards[index] = row['reward'] if row['status'] == 'ok' else None
        if len(self.rewards) == len(self.members):
            self._advance()

    def _advance(self):
        keep = self.planned.sizes[self.rung + 1] if self.rung + 1 < len(self.planned.sizes) else 0
        survivors = schedule.top_k(self.rewards, keep)
        if not survivors:
            self.finished = True
            return
        self.rung += 1
        self.members, self.rewards, self.submitted = survivors, {}, set()


class HyperbandSearch:
    """Hyperband over a def.py's configurations, results kept in a :class:`results.ResultStore`.

    Parameters
    ----------
    definition: definition.Definition
    store: results.ResultStore
    max_epochs: int
        Hyperband's R (``--epoch``).
    eta: int
        Hyperband's η (``--eta``).
    seed: int or None
        None reuses the seed of an existing search, or draws a new one.
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
        torch CPU threads per trial; None: :func:`dlutil.threads.default_threads` (1 on Ray).
    ray: str or None
        Run trials as Ray tasks (``--ray``): ``'auto'``, ``'HOST:PORT'``, or ``''`` for
        ``RAY_ADDRESS`` (else a new local Ray); None runs them here.
    gpus_per_trial: float or None
        GPUs a Ray task asks for (``--gpus-per-trial``); None: 1 on a cluster with GPUs.
    ddp: int
        Processes per trial (``--ddp``): each rung evaluation trains data-parallel (on Ray, a
        task reserves ``ddp`` times ``threads`` CPUs and ``gpus_per_trial`` GPUs).
    report_every: float
        Seconds between rewrites of ``report.html`` while searching.
    restart: bool
        ``--restart``: move an existing search aside and start afresh.
    keep_checkpoints: str
        ``--keep-checkpoints``: ``'all'``, ``'best'`` or ``'none'`` (see :mod:`checkpoints`).
    """

    def __init__(self, definition, store, max_epochs, eta=3, seed=None, batch_size=128,
                 data_dir='.', device=None, workers=1, devices=None, sampler='random',
                 trials=None, threads=None, report_every=30.0, restart=False,
                 keep_checkpoints=checkpoints.DEFAULT, ray=None, gpus_per_trial=None, ddp=1):
        self.definition, self.store = definition, store
        self.max_epochs, self.eta, self.trials = max_epochs, eta, trials
        self.plan = plan(max_epochs, eta, trials)
        self.batch_size, self.data_dir, self.device = batch_size, data_dir, device
        self.workers, self.devices = workers, devices or [device or 'cpu']
        self.sampler_name, self.report_every = sampler, report_every
        self.threads = threads or (1 if ray is not None else default_threads(workers * ddp)[0])
        self.ray, self.gpus_per_trial, self.ddp = ray, gpus_per_trial, ddp
        self.settings = Settings(store, definition.path, data_dir,
                                 {'epoch': max_epochs, 'eta': eta, 'batch_size': batch_size,
                                  'sampler': sampler, 'trials': trials}, seed, restart)
        self.seed = self.settings.seed
        self.sampler = Sampler(definition, self.seed, sampler)
        self.rows = {}    # (trial, epochs) -> search.csv row
        self.position = {results.trial_id(i): p.position for p in self.plan
                         for i in range(p.first, p.first + p.sizes[0])}
        self._configs, self._points, self._last_report = {}, {}, 0.0
        self._reporter = BackgroundReport(store.root)
        self._keeper = checkpoints.CheckpointKeeper(store, keep_checkpoints)

    # -- configurations -----------------------------------------------------------------------
    def trial_seed(self, index):
        return rng.derive_seed(self.seed, 1, index)

    def _open(self, state, states):
        """Sample the bracket's configurations when it may start; False while it must wait."""
        if self.sampler.model_based and not all(s.finished for s in states[:state.planned.position]):
            return False
        if state.planned.position in self._configs:
            return True
        indices = list(range(state.planned.first, state.planned.first + state.planned.sizes[0]))
        missing = [i for i in indices
                   if not os.path.exists(self.store.trial_file(results.trial_id(i), 'config.json'))]
        observations = []
        if missing and self.sampler.model_based:
            observations = [(self._point(key[0]), key[1], row['reward'])
                            for key, row in self.rows.items()
                            if self.position[key[0]] < state.planned.position]
        for index, (config, point) in zip(missing, self.sampler.sample(missing, observations)):
            trial = results.trial_id(index)
            if point is not None:
                results.write_json(self.store.trial_file(trial, 'space_point.json'), point)
            self.store.write_config(trial, config)
        self._configs[state.planned.position] = True
        return True

    def _point(self, trial):
        if trial not in self._points:
            path = self.store.trial_file(trial, 'space_point.json')
            self._points[trial] = results.read_json(path) if os.path.exists(path) else None
        return self._points[trial]

    # -- running ------------------------------------------------------------------------------
    def _executor(self):
        if self.ray is not None:
            from dlutil.search.ray_executor import RayExecutor
            return RayExecutor(self.definition, self.data_dir, self.batch_size, self.store,
                               self.threads, self.device, self.ray or None, self.gpus_per_trial,
                               self.ddp)
        if self.ddp > 1:
            from dlutil.search.ddp_trial import DDPExecutor
            return DDPExecutor(self.definition, self.data_dir, self.batch_size, self.store,
                               self.workers, self.devices, self.threads, self.ddp)
        if self.workers == 1:
            return InlineExecutor(self.definition, self.data_dir, self.batch_size, self.device,
                                  self.store, self.threads, rng.data_seed(self.seed))
        return PoolExecutor(self.definition, self.data_dir, self.batch_size, self.store,
                            self.workers, self.devices, self.threads, rng.data_seed(self.seed))

    def run(self):
        """Run (or continue) the search; returns the best rung evaluation's row, or raises.

        Rows of ``search.csv`` with status ``error`` are run again (the cause may have gone:
        a fixed file, a transient fault); ``ok`` and ``diverged`` rows are final.
        """
        self.settings.write()  # validated: the settings are recorded, the old search moved aside
        results.remove_temporaries(self.store.root)  # what a killed run was writing
        done = self.store.read_search()
        self._refresh(done)  # best.json and the report follow search.csv, whatever was cut short
        retry = {key for key, row in done.items() if row['status'] == 'error'}
        done = {key: row for key, row in done.items() if key not in retry}
        states = [BracketState(p) for p in self.plan]
        evaluations = sum(sum(p.sizes) for p in self.plan)
        log.info(f'Hyperband: R={self.max_epochs}, eta={self.eta}, seed={self.seed}, '
                 f'sampler={self.sampler_name}, '
                 f'workers={"Ray" if self.ray is not None else self.workers}'
                 + (f', ddp={self.ddp}' if self.ddp > 1 else '') + f': {len(self.plan)} '
                 f'brackets, {sum(p.sizes[0] for p in self.plan)} configurations, '
                 f'{evaluations} rung evaluations' + (f' ({len(done)} done before)' if done
                                                      else ''))
        executor = None
        pending = {}
        self._last_report = time.monotonic()  # the first report after report_every seconds
        bar = tqdm(total=evaluations, desc='search', unit='eval', disable=None, position=0)
        try:
            while True:
                self._release(states)  # checkpoints of trials no bracket will train again
                for state in states:
                    if state.finished or not self._open(state, states):
                        continue
                    for index in state.waiting():
                        key = (results.trial_id(index), state.epochs)
                        if key in done:  # recorded by an earlier run: replay it
                            self.rows[key] = done[key]
                            state.submitted.add(index)
                            state.record(index, done[key])
                            bar.update(1)
                        elif executor is None or len(pending) < executor.workers:
                            if key in retry:
                                retry.discard(key)
                                self._forget_error(key[0])
                            executor = executor or self._executor()
                            job = Job(index, key[0], self.store.read_config(key[0]),
                                      self.trial_seed(index), state.epochs)
                            state.submitted.add(index)
                            pending[executor.submit(job)] = (state, job)
                if not pending:
                    if all(s.finished for s in states):
                        break
                    # replayed rows completed rungs and opened new ones: look again
                    if not any(s.waiting() for s in states if not s.finished):
                        raise RuntimeError('internal error: the search stalled with no rung '
                                           'evaluation to run; please report it')
                    continue
                finished, _ = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: pending[f][1].index):
                    state, job = pending.pop(future)
                    row = self._record(state, job, future.result())
                    state.record(job.index, row)
                    bar.update(1)
                self._maybe_report()
        except BaseException:
            if executor is not None:
                executor.stop(wait=False)
                results.remove_temporaries(self.store.root)  # the workers are gone
            raise
        else:
            if executor is not None:
                executor.stop()
        finally:
            bar.close()
        self._drop_superseded()
        self._release(states)
        self._maybe_report(force=True)
        best = self.best()
        if best is None:
            failed = sorted(key[0] for key in self.rows)
            raise RuntimeError(f'every trial failed ({len(set(failed))} trials); see '
                               f'{self.store.trial_file(failed[0], "error.txt")} for the first')
        return best

    def _release(self, states):
        best = self.best()
        self._keeper.release(states, best['trial'] if best else None)

    def _record(self, state, job, outcome):
        """Write the rung evaluation's row to search.csv and refresh best.json."""
        row = {'trial': job.trial, 'bracket': state.planned.s, 'rung': state.rung,
               'epochs': job.epochs,
               'reward': outcome['reward'] if outcome['status'] == 'ok' else None,
               'status': outcome['status']}
        self.rows[(job.trial, job.epochs)] = row
        rows = {**self.store.read_search(), **self.rows}
        self.store.write_search(sorted(rows.values(), key=self._order))
        write_best(self.store, self.best(rows))
        if outcome['status'] == 'error':
            log.warning(f'trial {job.trial} failed: {outcome["message"]} '
                        f'(see {self.store.trial_file(job.trial, "error.txt")})')
        elif outcome['status'] == 'diverged':
            log.warning(f'trial {job.trial} diverged (loss or reward not finite)')
        log.info(f'trial {job.trial} bracket {state.planned.s} rung {state.rung}: '
                  f'{job.epochs} epochs, reward {_reward_text(row["reward"])} ({row["status"]})')
        return row

    def _drop_superseded(self):
        """Keep in search.csv only the evaluations of this plan as it ran to the end.

        A retried evaluation that now succeeds can change its rung's survivors; the rows of
        trials promoted only because it had failed then belong to no rung of the search.
        (Those trials keep the epochs they trained in their history.csv.)
        """
        rows = sorted(self.rows.values(), key=self._order)
        if rows != sorted(self.store.read_search().values(), key=self._order):
            self.store.write_search(rows)
            write_best(self.store, self.best())

    def _order(self, row):
        # a trial of no planned bracket (an edited search.csv) sorts last rather than crashing
        return self.position.get(row['trial'], len(self.plan)), row['rung'], row['trial']

    def best(self, rows=None):
        """The best rung evaluation (see :func:`dlutil.search.best.best_row`), or None."""
        rows = self.rows if rows is None else rows
        return best_row(sorted(rows.values(), key=self._order))

    def _refresh(self, done):
        """Rewrite best.json (and the report, if older) from search.csv as it stands."""
        write_best(self.store, self.best(done))
        page, csv = self.store.path('report.html'), self.store.search_csv
        if os.path.exists(csv) and (not os.path.exists(page)
                                    or os.path.getmtime(page) < os.path.getmtime(csv)):
            self._reporter.request()  # in the background: the search need not wait for it

    def _forget_error(self, trial):
        """A failed evaluation runs again: its old error.txt goes (a new one comes if it fails)."""
        path = self.store.trial_file(trial, 'error.txt')
        if os.path.exists(path):
            os.remove(path)

    def _maybe_report(self, force=False):
        """Rewrite report.html at most every ``report_every`` seconds, and at the end.

        During the search a background thread draws it, so workers never wait for a plot.
        """
        if force:
            self._reporter.close()
            self._reporter.draw()
        elif time.monotonic() - self._last_report >= self.report_every:
            self._last_report = time.monotonic()
            self._reporter.request()


def _reward_text(reward):
    """A reward as a person reads it: 4 significant digits (search.csv keeps every digit)."""
    return 'none' if reward is None else f'{reward:.4g}'


class BackgroundReport:
    """Draws ``report.html`` in a thread: :meth:`request` never blocks, :meth:`draw` does."""

    def __init__(self, result_dir):
        self.result_dir = result_dir
        self.thread = None

    def request(self):
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.draw, daemon=True)
            self.thread.start()

    def close(self):
        if self.thread is not None:
            self.thread.join()

    def draw(self):
        try:
            report.write_report(self.result_dir)
        except Exception as error:  # a report must never cost a search its results
            log.warning(f'could not write report.html: {type(error).__name__}: {error}')
