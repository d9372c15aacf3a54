"""Running rung evaluations here: in this process, or in a pool of worker processes.

Both executors return :class:`concurrent.futures.Future` objects, so the search waits on them the
same way. A worker process loads the def.py and makes its generators once, takes a share of the
CPU cores (torch threads) or a GPU of its own, and ignores Ctrl-C: the search process stops the
workers itself, and the atomic writes leave every finished epoch in place for the next run.

A worker dies with the search process (:func:`dlutil.processes.die_with_parent`), so no worker
writes into a results directory whose lock is gone.
"""
import concurrent.futures
import os
import signal

import torch

from dlutil.definition import Definition, load_module
from dlutil.processes import (
    LogForwarder,
    die_with_parent,
    send_logs,
    thread_lock_for_tqdm,
    tune_malloc,
    worker_context,
)
from dlutil.search.executors._job import TrialData, run_job
from dlutil.search.results import ResultStore


class InlineExecutor:
    """Runs each job in this process when it is submitted."""

    def __init__(self, definition, data_dir, batch_size, device, store, threads, data_seed=None):
        torch.set_num_threads(threads)
        self.definition, self.store = definition, store
        self.device, self.batch_size = device, batch_size
        self.data = TrialData(definition, data_dir, batch_size, data_seed)
        self.workers, self.queued = 1, 0

    def submit(self, job):
        future = concurrent.futures.Future()
        try:
            future.set_result(run_job(self.definition, self.data, self.store, job,
                                      self.device, self.batch_size))
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(error)
        return future

    def call(self, fn):
        """``fn(definition)`` here; returns what it returns."""
        return fn(self.definition)

    def stop(self, wait=True):
        pass


_WORKER = {}


def _init_worker(def_path, data_dir, batch_size, result_dir, devices, threads, counter, pids,
                 data_seed=None, logs=None):
    # a forkserver's child: its parent is the server, which exits with the search process
    die_with_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the search process stops us
    if logs is not None:
        send_logs(*logs)  # the epoch lines, shown by the search process
    thread_lock_for_tqdm()
    with counter.get_lock():
        number = counter.value
        counter.value += 1
    pids[number % len(pids)] = os.getpid()  # so that an interrupted search can end us at once
    tune_malloc()
    device = torch.device(devices[number % len(devices)])
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    definition = Definition(def_path, load_module(def_path))
    _WORKER.update(definition=definition, store=ResultStore(result_dir), device=device,
                   batch_size=batch_size,
                   data=TrialData(definition, data_dir, batch_size, data_seed))


def _call_in_worker(fn):
    return fn(_WORKER['definition'])


def _run_in_worker(job):
    w = _WORKER
    return run_job(w['definition'], w['data'], w['store'], job, w['device'], w['batch_size'],
                   progress=False)


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
        self.queued = 1  # a job waits in the pool, so no worker idles while results are recorded
        context = worker_context()
        # each worker writes its process id here as it starts: the pool's own list is private
        self.pids = context.Array('i', workers)
        self.logs = LogForwarder(context)
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker,
            initargs=(os.path.abspath(definition.path), data_dir, batch_size, store.root,
                      [str(d) for d in devices], threads, context.Value('i', 0), self.pids,
                      data_seed, (self.logs.queue, self.logs.level)))

    def submit(self, job):
        return self.pool.submit(_run_in_worker, job)

    def call(self, fn):
        """``fn(definition)`` in a worker, which the preloaded forkserver made ready (torch,
        torch._dynamo) while this process imported its own; returns what it returns, raises what
        it raises. The pool's first job: the search waits for it."""
        return self.pool.submit(_call_in_worker, fn).result()

    def stop(self, wait=True):
        """Shut the pool down; ``wait=False`` (interrupted): end the workers now, not after
        their current epoch. Either way, the workers are gone when this returns (the caller then
        sweeps their temporary files)."""
        if not wait:
            # a worker that dies breaks the pool, which then ends the others and joins them all
            for pid in [pid for pid in self.pids[:] if pid]:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.logs.stop()  # after the workers: every line they sent is shown
