"""One rung evaluation, wherever it runs: the job, the data it trains on, and how it ends.

:func:`run_job` trains a trial to a rung (:func:`dlutil.search.trial.train_trial`) and turns a
configuration's own failure into a recorded ``error`` outcome; faults of the data, the disk or
the environment (:data:`FATAL`) propagate and stop the search. Every executor calls it: in this
process, in a worker process, on each rank of a ``--ddp`` group, in a Ray task.
"""
import traceback
from dataclasses import dataclass

from dlutil import rng
from dlutil.errors import STOPS_SEARCH, DefinitionError
from dlutil.search import results
from dlutil.search.trial import train_trial

# errors that are not one configuration's fault: they stop the search instead of failing a trial
# (a disk fault that torch.save wraps in a RuntimeError arrives as StorageError, an OSError; a
# def.py that breaks the contract, such as a run_epoch row without train_loss, is a
# DefinitionError: every trial would fail the same way)
FATAL = STOPS_SEARCH + (DefinitionError,)


@dataclass(frozen=True)
class Job:
    """Train trial ``trial`` (index ``index``) until it has ``epochs`` epochs."""
    index: int
    trial: str
    config: dict
    seed: int
    epochs: int
    init: object = None  # --init-from: a dlutil.training.initial_weights.WeightInit


class TrialData:
    """The training and validation generators of a def.py, made on first use and kept.

    The global RNGs are seeded from ``data_seed`` (the same in every process) just before the
    generators are made, so every process draws the same data.

    Parameters
    ----------
    definition: dlutil.definition.Definition
    data_dir: str
    batch_size: int
    data_seed: int or None
    """

    def __init__(self, definition, data_dir, batch_size, data_seed=None):
        self.definition, self.data_dir, self.batch_size = definition, data_dir, batch_size
        self.data_seed = data_seed
        self.made = None

    def __call__(self):
        """``(train, val)``."""
        if self.made is None:
            if self.data_seed is not None:
                rng.seed_everything(self.data_seed)
            self.made = self.definition.train_val_generators(self.data_dir, self.batch_size)
        return self.made


def run_job(definition, data, store, job, device, batch_size, progress=True, after_epoch=None):
    """Train ``job``'s trial to its rung; returns ``{'reward', 'status', 'message'}``.

    Parameters
    ----------
    definition: dlutil.definition.Definition
        Its ``Model`` trains the trial.
    data: TrialData
        The generators.
    store: results.ResultStore
        Where the trial's files are.
    job: Job
    device: torch.device or str
    batch_size: int
    progress: bool
        tqdm bars (in this process only).
    after_epoch: callable or None
        ``after_epoch(epoch)``, once each epoch's checkpoint is written.

    A configuration's own failure is recorded (``trials/<id>/error.txt``) and returned as status
    ``error``; :data:`FATAL` errors propagate.
    """
    try:
        train, val = data()
        outcome = train_trial(definition.Model, job.config, job.seed, store, job.trial,
                              job.epochs, train, val, device, batch_size, progress=progress,
                              after_epoch=after_epoch, init=job.init)
        return {'reward': outcome.reward, 'status': outcome.status, 'message': None}
    except FATAL:
        raise
    except Exception as error:
        storage = results.storage_error(error, store.trial_dir(job.trial))
        if storage is not None:  # the disk, not the configuration
            raise storage from error
        store.write_error(job.trial, traceback.format_exc())
        return {'reward': None, 'status': 'error',
                'message': f'{type(error).__name__}: {error}'}
