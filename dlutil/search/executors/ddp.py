"""Rung evaluations as data-parallel groups (``--ddp N``): each trial trains on N processes.

Each rung evaluation launches a process group (:func:`dlutil.training.ddp.launch`): every rank
loads the def.py, makes its generators and trains the trial with
:func:`dlutil.search.executors.run_job`, its model joined to the group by
:class:`dlutil.training.ddp.DataParallel`. Rank 0 reads and writes the results directory; the
other ranks resume from a copy of ``last.pt`` and write into a scratch directory that is thrown
away, so the checkpoints are written once. ``--workers W`` runs W groups at once, each on its
own N GPUs of ``--gpus`` on CUDA. On Ray (``--ray``) a task runs the group
(:func:`run_group`): rank 0 trains in the task's scratch directory and hands each epoch's files
to the task, which sends them to the driver's node.
"""
import concurrent.futures
import os
import queue
import shutil
import tempfile
import threading

import torch

from dlutil.definition import Definition, load_module
from dlutil.processes import (LogForwarder, send_logs, thread_lock_for_tqdm, tune_malloc,
                              worker_context)
from dlutil.search import results
from dlutil.search.executors._job import TrialData, run_job
from dlutil.training import ddp


class _ParallelModels:
    """A def.py whose ``Model`` joins the process group as it is made."""

    def __init__(self, definition):
        self.definition = definition

    def Model(self, config, device=None):
        model = self.definition.Model(config, device=device)
        ddp.DataParallel(model)
        return model


def _rank(rank, world, device, def_path, data_dir, batch_size, root, job, threads,
          report_epochs=False, logs=None):
    if rank == 0 and logs is not None:  # the others' epoch lines would repeat rank 0's
        send_logs(*logs)
    thread_lock_for_tqdm()
    tune_malloc()
    torch.set_num_threads(threads)
    definition = Definition(def_path, load_module(def_path))
    store = results.ResultStore(root)
    scratch = None
    if rank > 0:  # reads rank 0's last.pt, writes nothing there
        scratch = tempfile.mkdtemp(prefix=f'dlutil-{job.trial}-rank{rank}-')
        last = store.trial_file(job.trial, 'last.pt')
        store = results.ResultStore(scratch)
        if os.path.exists(last):
            os.makedirs(store.trial_dir(job.trial))
            shutil.copyfile(last, store.trial_file(job.trial, 'last.pt'))
    after_epoch = None
    if rank == 0 and report_epochs:  # the launching process passes them on (a Ray task)

        def report_files(epoch):
            ddp.report(results.trial_files(store, job.trial))
        after_epoch = report_files
    try:
        return run_job(_ParallelModels(definition), TrialData(definition, data_dir, batch_size),
                       store, job, device, batch_size, progress=False, after_epoch=after_epoch)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run_group(world, def_path, data_dir, batch_size, store, job, threads, devices,
              on_epoch=None, cancel=None):
    """One rung evaluation on a group of ``world`` processes; returns its outcome.

    Parameters
    ----------
    store: results.ResultStore
        Rank 0 trains there (the results directory, or a Ray task's scratch directory).
    devices: list of str
        The group's devices (one GPU per rank, or ``['cpu']``).
    on_epoch: callable or None
        ``on_epoch(files)`` in this process after each epoch, with rank 0's files of the trial
        (``{name: bytes}``, see :func:`dlutil.search.results.trial_files`).
    cancel: threading.Event or None
        See :func:`dlutil.training.ddp.launch`.

    Rank 0's log lines (its epoch lines) reach this process's logger through a
    :class:`~dlutil.processes.LogForwarder`, as a pool worker's do.
    """
    logs = LogForwarder(worker_context())  # rank 0's epoch lines, shown by this process
    try:
        return ddp.launch(world, _rank, (os.path.abspath(def_path), data_dir, batch_size,
                                         store.root, job, threads, on_epoch is not None,
                                         (logs.queue, logs.level)),
                          devices, cancel=cancel, on_report=on_epoch)
    finally:
        logs.stop()


def device_groups(world, workers, devices):
    """The devices of each of ``workers`` groups of ``world`` ranks: N GPUs each, or the CPU."""
    devices = [str(d) for d in devices]
    if not devices[0].startswith('cuda'):
        return [['cpu']] * workers
    if len(devices) < world * workers:
        raise ValueError(f'--ddp {world} with --workers {workers} needs {world * workers} GPUs; '
                         f'--gpus gives {len(devices)} ({", ".join(devices)})')
    return [devices[w * world:(w + 1) * world] for w in range(workers)]


class DDPExecutor:
    """Runs each job on a group of ``world`` processes; ``workers`` groups at once."""

    queued = 0  # jobs handed out beyond one per worker: none, each waits for a free group

    def __init__(self, definition, data_dir, batch_size, store, workers, devices, threads,
                 world):
        self.workers, self.world = workers, world
        self.definition, self.data_dir, self.batch_size = definition, data_dir, batch_size
        self.store, self.threads = store, threads
        self.groups = queue.Queue()
        for group in device_groups(world, workers, devices):
            self.groups.put(group)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        self.cancel = threading.Event()

    def _run(self, job):
        group = self.groups.get()
        try:
            return run_group(self.world, self.definition.path, self.data_dir, self.batch_size,
                             self.store, job, self.threads, group, cancel=self.cancel)
        finally:
            self.groups.put(group)

    def call(self, fn):
        """``fn(definition)`` here; returns what it returns."""
        return fn(self.definition)

    def submit(self, job):
        return self.pool.submit(self._run, job)

    def stop(self, wait=True):
        if not wait:  # interrupted: the groups' processes stop now
            self.cancel.set()
        self.pool.shutdown(wait=wait, cancel_futures=True)
