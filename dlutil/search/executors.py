"""Running rung evaluations: in this process, or in a pool of worker processes.

Both executors return :class:`concurrent.futures.Future` objects, so the search waits on them the
same way. A worker process loads the def.py and makes its generators once, takes a share of the
CPU cores (torch threads) or a GPU of its own, and ignores Ctrl-C: the search process stops the
workers itself, and the atomic writes leave every finished epoch in place for the next run.

A worker dies with the search process: on Linux the kernel kills it (``PR_SET_PDEATHSIG``);
everywhere, it checks before every write that its parent is still there, and a watch thread
checks every second, so no worker writes into a results directory whose lock is gone.
"""
import concurrent.futures
import os
import signal
import traceback
from dataclasses import dataclass

import torch

from dlutil.errors import STOPS_SEARCH
from dlutil import rng
from dlutil.definition import Definition, load_module
from dlutil.search import results
from dlutil.search.results import ResultStore
from dlutil.search.trial import train_trial
from dlutil.processes import die_with_parent, tune_malloc, worker_context

# errors that are not one configuration's fault: they stop the search instead of failing a trial
# (a disk fault that torch.save wraps in a RuntimeError arrives as StorageError, an OSError)
FATAL = STOPS_SEARCH


@dataclass(frozen=True)
class Job:
    """Train trial ``trial`` (index ``index``) until it has ``epochs`` epochs."""
    index: int
    trial: str
    config: dict
    seed: int
    epochs: int


def evaluate(definition, generators, store, job, device, batch_size, progress=True,
             after_epoch=None):
    """Run one rung evaluation; returns ``{'reward', 'status', 'message'}``.

    ``after_epoch(epoch)`` is called once each epoch's checkpoint is written.

    A configuration's own failure is recorded (``trials/<id>/error.txt``) and returned as status
    ``error``; :data:`FATAL` errors propagate.
    """
    try:
        train, val = generators()
        outcome = train_trial(definition.Model, job.config, job.seed, store, job.trial,
                              job.epochs, train, val, device, batch_size, progress=progress,
                              after_epoch=after_epoch)
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


class _Generators:
    """The training and validation generators of a def.py, made on first use, with the global
    RNGs seeded from ``data_seed`` (the same in every process) just before."""

    def __init__(self, definition, data_dir, batch_size, data_seed=None):
        self.definition, self.data_dir, self.batch_size = definition, data_dir, batch_size
        self.data_seed = data_seed
        self.made = None

    def __call__(self):
        if self.made is None:
            if self.data_seed is not None:
                rng.seed_everything(self.data_seed)
            self.made = self.definition.train_val_generators(self.data_dir, self.batch_size)
        return self.made


class InlineExecutor:
    """Runs each job in this process when it is submitted."""

    def __init__(self, definition, data_dir, batch_size, device, store, threads, data_seed=None):
        torch.set_num_threads(threads)
        self.definition, self.store = definition, store
        self.device, self.batch_size = device, batch_size
        self.generators = _Generators(definition, data_dir, batch_size, data_seed)
        self.workers = 1

    def submit(self, job):
        future = concurrent.futures.Future()
        try:
            future.set_result(evaluate(self.definition, self.generators, self.store, job,
                                       self.device, self.batch_size))
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(error)
        return future

    def stop(self, wait=True):
        pass


_WORKER = {}
def _init_worker(def_path, data_dir, batch_size, result_dir, devices, threads, counter, parent,
                 data_seed=None):
    # a forkserver's child: its parent is the server, which exits with the search process
    die_with_parent(os.getppid() if parent is None else parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the search process stops us
    tune_malloc()
    with counter.get_lock():
        number = counter.value
        counter.value += 1
    device = torch.device(devices[number % len(devices)])
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    definition = Definition(def_path, load_module(def_path))
    _WORKER.update(definition=definition, store=ResultStore(result_dir), device=device,
                   batch_size=batch_size,
                   generators=_Generators(definition, data_dir, batch_size, data_seed))


def _run_in_worker(job):
    w = _WORKER
    return evaluate(w['definition'], w['generators'], w['store'], job, w['device'],
                    w['batch_size'], progress=False)


class PoolExecutor:
    """``workers`` processes of ``threads`` torch threads; on CUDA each takes a device in turn.

    Parameters
    ----------
    devices: list of str
        Devices handed out to workers in turn (``['cpu']``, or ``['cuda:0', 'cuda:1']``).
    """

    def __init__(self, definition, data_dir, batch_size, store, workers, devices, threads,
                 data_seed=None):
        self.workers = workers
        context = worker_context()
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker,
            initargs=(os.path.abspath(definition.path), data_dir, batch_size, store.root,
                      [str(d) for d in devices], threads, context.Value('i', 0), None,
                      data_seed))

    def submit(self, job):
        return self.pool.submit(_run_in_worker, job)

    def stop(self, wait=True):
        processes = list(getattr(self.pool, '_processes', {}).values())
        if not wait:
            # interrupted: end the workers now rather than after their current epoch
            for process in processes:
                process.terminate()
        self.pool.shutdown(wait=wait, cancel_futures=True)
        for process in processes:  # gone before the caller sweeps their temporary files
            process.join(timeout=10)
