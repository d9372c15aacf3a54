"""The Hyperband search: sample configurations, run rung evaluations, promote, record.

The search is a replay of the schedule (:mod:`hyperband`) against ``search.csv``: a rung
evaluation already recorded there is read, not rerun. Configurations and trial seeds derive from
``--seed`` and the trial's index alone, so re-running an interrupted search continues it, and
trials give the same results whatever ran before them.
"""
import json
import logging
import os
import random
import traceback

from tqdm.auto import tqdm

import hyperband
import results
import rng
from base_model import LabelShapeError
from trial import train_trial

log = logging.getLogger('dlutil')

# errors that are not one configuration's fault: they stop the search instead of failing a trial
FATAL = (LabelShapeError, OSError, MemoryError)


class SearchSettingsError(ValueError):
    """The results directory was made by a search with other settings."""


class HyperbandSearch:
    """Hyperband over a def.py's configurations, results kept in a :class:`results.ResultStore`.

    Parameters
    ----------
    definition: definition.Definition
        The loaded def.py.
    store: results.ResultStore
    max_epochs: int
        Hyperband's R (``--epoch``).
    eta: int
        Hyperband's η (``--eta``).
    seed: int or None
        None reuses the seed of an existing search, or draws a new one.
    batch_size: int
        Passed to ``get_train_generator`` and used for evaluation batches.
    data_dir: str
    device: torch.device or str or None
    """

    def __init__(self, definition, store, max_epochs, eta=3, seed=None, batch_size=128,
                 data_dir='.', device=None):
        self.definition, self.store = definition, store
        self.brackets = hyperband.schedule(max_epochs, eta)
        self.max_epochs, self.eta = max_epochs, eta
        self.batch_size, self.data_dir, self.device = batch_size, data_dir, device
        self.seed = self._settle_settings(seed)
        self.rows = {}           # (trial, epochs) -> search.csv row
        self._generators = None

    # -- settings -----------------------------------------------------------------------------
    def _settle_settings(self, seed):
        path = self.store.path('search.json')
        wanted = {'epoch': self.max_epochs, 'eta': self.eta, 'batch_size': self.batch_size}
        if os.path.exists(path):
            saved = results.read_json(path)
            changed = [f'--{key.replace("_", "-")} {saved.get(key)} (now {value})'
                       for key, value in wanted.items() if saved.get(key) != value]
            if seed is not None and seed != saved.get('seed'):
                changed.append(f'--seed {saved.get("seed")} (now {seed})')
            if changed:
                raise SearchSettingsError(
                    f'{self.store.root} holds a search made with ' + ', '.join(changed) +
                    '; re-run with the same flags to continue it, or use another --result')
            return saved['seed']
        if seed is None:
            seed = random.SystemRandom().randrange(2 ** 31)
        results.write_json(path, {**wanted, 'seed': seed, 'model': self.definition.path})
        return seed

    # -- configurations -----------------------------------------------------------------------
    def config(self, index):
        """The configuration of trial ``index``: sampled once from a seed of its own, then read."""
        trial = results.trial_id(index)
        path = self.store.trial_file(trial, 'config.json')
        if os.path.exists(path):
            return results.read_json(path)
        rng.seed_everything(rng.derive_seed(self.seed, 0, index))
        config = self.definition.call('get_config')
        if not isinstance(config, dict):
            raise TypeError(f'{self.definition.path}: get_config() must return a dict, '
                            f'got {type(config).__name__}')
        try:
            config = json.loads(json.dumps(config, default=results._json_default))
        except (TypeError, ValueError) as error:
            raise TypeError(f'{self.definition.path}: get_config() must return a '
                            f'JSON-serialisable dict ({error})') from None
        self.store.write_config(trial, config)
        return config

    def trial_seed(self, index):
        return rng.derive_seed(self.seed, 1, index)

    # -- running ------------------------------------------------------------------------------
    def generators(self):
        """The training and validation generators, made once, when first needed."""
        if self._generators is None:
            self._generators = self.definition.train_val_generators(self.data_dir,
                                                                   self.batch_size)
        return self._generators

    def run(self):
        """Run (or continue) the search; returns the best rung evaluation's row, or raises."""
        done = self.store.read_search()
        configs, evaluations, _, _ = hyperband.totals(self.max_epochs, self.eta)
        log.info(f'Hyperband: R={self.max_epochs}, eta={self.eta}, seed={self.seed}: '
                 f'{len(self.brackets)} brackets, {configs} configurations, '
                 f'{evaluations} rung evaluations'
                 + (f' ({len(done)} already done)' if done else ''))
        bar = tqdm(total=evaluations, desc='search', unit='eval', disable=None, position=0)
        first = 0
        with bar:
            for bracket in self.brackets:
                indices = list(range(first, first + bracket.n))
                first += bracket.n
                survivors = indices
                for rung, keep in zip(bracket.rungs, bracket.keep):
                    rewards = {}
                    for index in survivors:
                        trial = results.trial_id(index)
                        key = (trial, rung.epochs)
                        row = done.get(key) or self._evaluate(index, bracket, rung)
                        self.rows[key] = row
                        rewards[index] = None if row['status'] != 'ok' else row['reward']
                        bar.update(1)
                    survivors = hyperband.top_k(rewards, keep)
            bar.total = bar.n  # failed trials leave rungs short
            bar.refresh()
        best = self.best()
        if best is None:
            failed = sorted({key[0] for key in self.rows})
            raise RuntimeError(f'every trial failed ({len(failed)} trials); see '
                               f'{self.store.trial_file(failed[0], "error.txt")} for the first')
        return best

    def _evaluate(self, index, bracket, rung):
        """Train trial ``index`` to ``rung.epochs`` epochs and record the rung evaluation."""
        trial = results.trial_id(index)
        config = self.config(index)
        train_generator, val_generator = self.generators()
        try:
            outcome = train_trial(self.definition.Model, config, self.trial_seed(index),
                                  self.store, trial, rung.epochs, train_generator,
                                  val_generator, self.device, self.batch_size)
            reward, status = outcome.reward, outcome.status
        except FATAL:
            raise
        except Exception as error:  # one configuration's failure: record it and go on
            self.store.write_error(trial, traceback.format_exc())
            log.warning(f'trial {trial} failed: {type(error).__name__}: {error} '
                        f'(see {self.store.trial_file(trial, "error.txt")})')
            reward, status = None, 'error'
        if status == 'diverged':
            log.warning(f'trial {trial} diverged (loss or reward not finite)')
        row = {'trial': trial, 'bracket': bracket.s, 'rung': rung.index, 'epochs': rung.epochs,
               'reward': reward if status == 'ok' else None, 'status': status}
        self._record(row)
        log.info(f'trial {trial} bracket {bracket.s} rung {rung.index}: {rung.epochs} epochs, '
                 f'reward {reward if reward is not None else "-"} ({status})')
        return row

    def _record(self, row):
        self.rows[(row['trial'], row['epochs'])] = row
        done = {**self.store.read_search(), **self.rows}
        order = sorted(done.values(), key=lambda r: (-r['bracket'], r['rung'], r['trial']))
        self.store.write_search(order)
        best = self.best(done)
        if best is not None:
            self._write_best(best)

    def best(self, rows=None):
        """The best rung evaluation (highest reward; ties: the earlier one), or None."""
        rows = self.rows if rows is None else rows
        ok = [row for row in rows.values()
              if row['status'] == 'ok' and not results.is_failure(row['reward'])]
        if not ok:
            return None
        return min(ok, key=lambda r: (-r['reward'], -r['bracket'], r['rung'], r['trial']))

    def _write_best(self, row):
        """best.json: the best trial, and the epoch of its best.pt (its highest reward)."""
        trial = row['trial']
        history = [r for r in self.store.read_history(trial)
                   if not results.is_failure(r['hyperband_reward'])]
        top = min(history, key=lambda r: (-r['hyperband_reward'], r['epoch']))
        results.write_json(self.store.best_json, {
            'trial': trial, 'config': self.store.read_config(trial),
            'epoch': top['epoch'], 'reward': top['hyperband_reward'],
            'rung_epochs': row['epochs'], 'rung_reward': row['reward']})
