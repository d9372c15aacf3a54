"""One trial: a configuration trained epoch by epoch, checkpointed after every epoch.

A rung evaluation asks for a trial trained to ``epochs`` epochs in total. The trial continues from
its ``last.pt`` (weights, optimizer, RNG and shuffling state, history), so promotion never
retrains and a crash loses at most the epoch in progress.

Checkpoint contents (``torch.load(path, weights_only=True)`` reads them)::

    {'model': {'network', 'optimizer', 'training', 'extra'}, 'epoch': int, 'config': dict,
     'rng': global RNG states, 'generator': shuffling state, 'history': [epoch rows],
     'best': {'epoch', 'reward'}, 'stopped': bool, 'seed': int}

A rung evaluation reports the highest reward of the trial's first ``epochs`` epochs, whose
weights best.pt holds (:mod:`best`); a trial that early stopping ended
(``BaseModel.early_stopping_patience``) trains no further in later rungs and reports the same.
"""
import inspect
import logging
import math
import numbers
import os
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from dlutil import rng
from dlutil.contract import RUN_EPOCH_KEYS
from dlutil.errors import DefinitionError
from dlutil.search import results
from dlutil.search.best import best_epoch

log = logging.getLogger('dlutil')


@dataclass
class Outcome:
    """What a rung evaluation reports: the best reward so far, its epoch, and its status."""
    reward: float
    status: str
    epochs: int


def _finite(value):
    return value is not None and math.isfinite(value)


def train_trial(model_class, config, seed, store, trial, epochs, train_generator, val_generator,
                device=None, batch_size=None, progress=True, after_epoch=None, init=None):
    """Train ``trial`` until it has ``epochs`` epochs, resuming from its last checkpoint.

    Parameters
    ----------
    model_class: type
        The def.py's ``Model``.
    config: dict
        The trial's configuration.
    seed: int
        The trial's seed (weights, dropout, shuffling).
    store: results.ResultStore
    trial: str
        The trial id.
    epochs: int
        Total epochs the trial must have trained when this returns.
    progress: bool
        Show tqdm bars for the trial's epochs and batches (on a terminal), the running loss
        beside the batches. Each finished epoch is logged either way, one line
        (:func:`epoch_line`; a worker process sends it to the search's terminal).
    after_epoch: callable or None
        ``after_epoch(epoch)``, called once the epoch's checkpoints are written (a Ray task
        sends them to the driver).
    init: dlutil.training.initial_weights.WeightInit or None
        ``--init-from``: the first weights (a fresh trial) and the frozen layers (always).

    Returns
    -------
    Outcome
        Status ``ok``, or ``diverged`` when the loss or the reward stopped being finite.
    """
    last_path = store.trial_file(trial, 'last.pt')
    best_path = store.trial_file(trial, 'best.pt')
    rng.seed_everything(seed)
    model = model_class(config, device=device)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(f'trial {trial}:\n{describe(model, val_generator)}')
    if os.path.exists(last_path):
        checkpoint = results.load_checkpoint(last_path, map_location=model.device)
        model.load_state_dict(checkpoint['model'])
        rng.set_global_state(checkpoint['rng'])
        if hasattr(train_generator, 'set_state'):
            train_generator.set_state(checkpoint['generator'])
        history, best, done = checkpoint['history'], checkpoint['best'], checkpoint['epoch']
        stopped = checkpoint.get('stopped', False)
        if best['epoch'] == done:  # a crash may have come between last.pt and best.pt
            results.link_checkpoint(last_path, best_path)
    else:
        if hasattr(train_generator, 'reseed'):
            train_generator.reseed(seed)
        history, best, done, stopped = [], None, 0, False
    if init is not None:  # loaded before the first epoch; frozen again when resuming
        init.apply(model.network, load=done == 0)
    # rows past the checkpoint belong to an epoch that a crash cut short: they go
    store.write_history(trial, history)

    show = None if progress else True  # tqdm: disable=None hides bars off a terminal
    bar = tqdm(total=epochs, initial=done, desc=f'trial {trial}', unit='epoch', leave=False,
               disable=show, position=1)
    try:
        while done < epochs and not stopped:
            if hasattr(val_generator, 'reseed'):  # the same validation draws in any process
                val_generator.reseed(rng.derive_seed(seed, 3, done + 1))
            batches = tqdm(total=_num_batches(train_generator), desc=f'epoch {done + 1}',
                           unit='batch', leave=False, disable=show, position=2)
            # a diverging trial's NaN and inf reach numpy's metrics: the row says so, once,
            # rather than numpy's RuntimeWarnings on stderr
            start = time.perf_counter()
            with batches, np.errstate(all='ignore'):
                row = model.run_epoch(train_generator, val_generator, batch_size, batches)
            check_row(model, row)
            done += 1
            row = {'epoch': done, **row}
            history.append(row)
            line = epoch_line(trial, row, epochs, time.perf_counter() - start)
            reward = row['hyperband_reward']
            if not (_finite(row.get('train_loss')) and _finite(reward)):
                store.write_history(trial, history)
                store.write_error(trial, f'epoch {done}: train_loss={row.get("train_loss")}, '
                                         f'hyperband_reward={reward}; the trial diverged\n')
                log.info(line)
                return Outcome(reward=float('nan'), status='diverged', epochs=done)
            stopped = bool(model.end_epoch(row))
            improved = best is None or reward > best['reward']
            if improved:
                best = {'epoch': done, 'reward': reward}
            state = {'model': model.state_dict(), 'epoch': done, 'config': config, 'seed': seed,
                     'rng': rng.get_global_state(),
                     'generator': (train_generator.get_state()
                                   if hasattr(train_generator, 'get_state') else {}),
                     'history': history, 'best': best, 'stopped': stopped}
            # history first, then last.pt: after a crash in between, last.pt wins on resume
            store.write_history(trial, history)
            results.save_checkpoint(last_path, state)
            if improved:
                results.link_checkpoint(last_path, best_path)
            log.info(line)  # once the epoch is saved: an interruption from here on keeps it
            if after_epoch is not None:
                after_epoch(done)
            bar.update(1)
    finally:
        bar.close()
    # the rung's statistic: the best reward so far, whose weights best.pt holds (see dlutil.search.best)
    epoch, reward = best_epoch(history, epochs)
    return Outcome(reward=reward, status='ok', epochs=epoch)


def check_row(model, row):
    """A :class:`DefinitionError` unless ``row`` (what ``model.run_epoch`` returned) holds the
    numbers the contract asks for (:data:`dlutil.contract.RUN_EPOCH_KEYS`)."""
    method = type(model).run_epoch
    where = f'{inspect.getsourcefile(method) or "def.py"}: {method.__qualname__}'
    if not isinstance(row, dict):
        raise DefinitionError(f'{where} returned {type(row).__name__}; it must return a dict '
                              f'with {" and ".join(RUN_EPOCH_KEYS)}')
    for key in RUN_EPOCH_KEYS:
        if key not in row:
            raise DefinitionError(f'{where} returned a row without {key} (it has '
                                  f'{", ".join(map(str, row)) or "nothing"}); it must return a '
                                  f'dict with {" and ".join(RUN_EPOCH_KEYS)}')
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DefinitionError(f'{where} returned {key}={value!r}; it must be a number')


def epoch_line(trial, row, epochs, seconds):
    """What the terminal shows of a finished epoch: ``row`` (a history row) of ``trial``, which
    trains to ``epochs`` epochs now, in ``seconds`` (training and validation)."""
    values = ', '.join(f'{name} {_number(row[key])}' for key, name in (
        ('train_loss', 'train_loss'), ('val_loss', 'val_loss'), ('hyperband_reward', 'reward'))
        if key in row)
    return f'trial {trial} epoch {row["epoch"]}/{epochs}: {values} ({seconds:.3g} s)'


def _number(value):
    return f'{value:.4g}' if isinstance(value, numbers.Real) else str(value)


def describe(model, generator):
    """The network's layers, output shapes and parameter counts (``--debug``), on an input shaped
    like the validation data's (not the training data's: that would draw from its shuffling RNG)."""
    from dlutil.data.batches import iterate, split_batch
    from dlutil.training.summary import summary
    x, _ = split_batch(next(iterate(generator, 2)))
    if isinstance(x, dict):
        return f'{type(model.network).__name__} (several inputs: no summary)'
    return summary(model.network, tuple(x.shape[1:]))


def _num_batches(generator):
    try:
        return len(generator)
    except TypeError:
        return None
