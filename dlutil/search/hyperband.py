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

from tqdm.auto import tqdm

from dlutil import rng
from dlutil.errors import SearchFailedError
from dlutil.search import results
from dlutil.search import checkpoints
from dlutil.search.best import best_row, closing_lines, write_best
from dlutil.search.brackets import BracketState, critical_path_first
from dlutil.search.replay import replay
from dlutil.search.executors import Job
from dlutil.search.sampling import Sampler
from dlutil.search.schedule import plan, totals
from dlutil.search.settings import Settings

log = logging.getLogger('dlutil')


class HyperbandSearch:
    """Hyperband over a def.py's configurations, results kept in a :class:`results.ResultStore`.

    Parameters
    ----------
    definition: definition.Definition
    store: results.ResultStore
    settings: settings.SearchSettings
        What the run was asked for; :attr:`settings` is a copy with the seed chosen (the
        existing search's, or a new one).
    watchers: sequence
        Objects told how the search goes: ``update(states, best_trial)`` as rung evaluations are
        recorded and ``close(states, best_trial)`` at the end (the checkpoint policy,
        :class:`checkpoints.CheckpointKeeper`, and the report,
        :class:`report.BackgroundReport`), in this order; ``stop()``, where a watcher has it,
        when the search ends by an interruption or an error.

    Checking the settings against an existing ``search.json`` happens here (a refused change
    raises :class:`SearchSettingsError`); ``search.json`` is written when :meth:`run` starts.
    """

    def __init__(self, definition, store, settings, watchers=()):
        assert settings.threads is not None, 'the thread count is chosen before the search'
        self.definition, self.store = definition, store
        self.record = Settings(store, definition.path, settings.data_dir, settings.flags,
                               settings.seed, settings.restart, settings.keep_results)
        self.settings = settings.replace(seed=self.record.seed)
        self.seed = self.settings.seed
        self.plan = plan(settings.max_epochs, settings.eta, settings.trials)
        self.sampler = Sampler(definition, self.seed, settings.sampler)
        self.watchers = list(watchers)
        self.rows = {}    # (trial, epochs) -> search.csv row
        self.position = {results.trial_id(i): p.position for p in self.plan
                         for i in range(p.first, p.first + p.sizes[0])}
        self._configs, self._points = {}, {}

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
    def run(self, executor):
        """Run (or continue) the search; returns the best rung evaluation's row, or raises
        when every trial failed. Either way it ends with a summary (:meth:`_summarize`).

        ``executor`` (:func:`dlutil.search.executors.make_executor`) runs the rung evaluations;
        it is stopped when this returns or raises (at once on an interrupt).

        Rows of ``search.csv`` with status ``error`` are run again (the cause may have gone:
        a fixed file, a transient fault); ``ok`` and ``diverged`` rows are final.
        """
        try:
            # changed files with finished results: trained again, they must give the same
            self.record.verified(lambda: replay(self.definition, self.store,
                                                self.store.read_search().values(),
                                                self.settings, self.trial_seed))
            self.record.write()  # validated: the settings recorded, an old search moved aside
            results.remove_temporaries(self.store.root)  # what a killed run was writing
            done = self.store.read_search()
            write_best(self.store, self.best(done))  # best.json follows search.csv as it stands
            retry = {key for key, row in done.items() if row['status'] == 'error'}
            done = {key: row for key, row in done.items() if key not in retry}
            states = [BracketState(p) for p in self.plan]
            self._announce(executor, len(done))
            self._loop(executor, states, done, retry)
        except BaseException:
            executor.stop(wait=False)
            results.remove_temporaries(self.store.root)  # the workers are gone
            for watcher in self.watchers:  # the report: a final page, no longer reloading
                getattr(watcher, 'stop', lambda: None)()
            raise
        executor.stop()
        self._drop_superseded()
        self._tell('close', states)
        best = self.best()
        self._summarize()
        if best is None:
            failed = sorted(key[0] for key in self.rows)
            raise SearchFailedError(f'every trial failed ({len(set(failed))} trials); see '
                               f'{self.store.trial_file(failed[0], "error.txt")} for the first')
        return best

    def _summarize(self):
        """The closing lines: disk used, trials by outcome, the best one, the report."""
        usage = checkpoints.disk_usage(self.store.root)
        log.info(f'{self.store.root} uses {checkpoints.human_bytes(usage["total"])}, '
                 f'{checkpoints.human_bytes(usage["checkpoints"])} of it in '
                 f'{usage["checkpoint_files"]} checkpoints (--keep-checkpoints '
                 f'{self.settings.keep_checkpoints})')
        rows = sorted(self.rows.values(), key=self._order)
        for line in closing_lines(self.store, rows,
                                  os.path.abspath(self.store.path('report.html'))):
            log.info(line)

    def _announce(self, executor, done):
        settings = self.settings
        configs, evaluations = totals(settings.max_epochs, settings.eta, settings.trials)[:2]
        log.info(f'Hyperband: R={settings.max_epochs}, eta={settings.eta}, seed={self.seed}, '
                 f'sampler={settings.sampler}, '
                 f'workers={"Ray" if settings.ray is not None else executor.workers}'
                 + (f', ddp={settings.ddp}' if settings.ddp > 1 else '') + f': {len(self.plan)} '
                 f'brackets, {configs} configurations, '
                 f'{evaluations} rung evaluations' + (f' ({done} done before)' if done else ''))

    def _loop(self, executor, states, done, retry):
        """Replay what ``done`` holds, hand the rest to ``executor``, until every bracket ends."""
        pending = {}
        bar = tqdm(total=totals(self.settings.max_epochs, self.settings.eta,
                                self.settings.trials)[1], desc='search', unit='eval',
                   disable=None, position=0)
        with bar:
            while True:
                self._tell('update', states)
                # brackets open in plan order (the sampler's order); jobs go out by critical path
                opened = [s for s in states if not s.finished and self._open(s, states)]
                for state in critical_path_first(opened):
                    for index in state.waiting():
                        key = (results.trial_id(index), state.epochs)
                        if key in done:  # recorded by an earlier run: replay it
                            self.rows[key] = done[key]
                            state.submitted.add(index)
                            state.record(index, done[key])
                            bar.update(1)
                        elif len(pending) < executor.workers + executor.queued:
                            if key in retry:
                                retry.discard(key)
                                self._forget_error(key[0])
                            job = Job(index, key[0], self.store.read_config(key[0]),
                                      self.trial_seed(index), state.epochs,
                                      self.settings.init)
                            state.submitted.add(index)
                            pending[executor.submit(job)] = (state, job)
                if not pending:
                    if all(s.finished for s in states):
                        return
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

    def _tell(self, event, states):
        """``update`` or ``close`` every watcher, with the best trial so far."""
        best = self.best()
        for watcher in self.watchers:
            getattr(watcher, event)(states, best['trial'] if best else None)

    def _record(self, state, job, outcome):
        """Write the rung evaluation's row to search.csv and refresh best.json."""
        row = {'trial': job.trial, 'bracket': state.planned.s, 'rung': state.rung,
               'epochs': job.epochs,
               'reward': outcome['reward'] if outcome['status'] == 'ok' else None,
               'status': outcome['status'], 'def_version': self.record.version}
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

    def _forget_error(self, trial):
        """A failed evaluation runs again: its old error.txt goes (a new one comes if it fails)."""
        path = self.store.trial_file(trial, 'error.txt')
        if os.path.exists(path):
            os.remove(path)


def _reward_text(reward):
    """A reward as a person reads it: 4 significant digits (search.csv keeps every digit)."""
    return 'none' if reward is None else f'{reward:.4g}'
