"""The tool's own processes: fast worker starts, a malloc that keeps its memory, no orphans.

Worker processes start fast: they fork from a *forkserver*, a clean single-threaded process that
has imported :data:`PRELOAD` once (forking the search process itself is unsafe with torch's
thread pools and CUDA; spawning is safe, but then every worker spends seconds importing torch
before it trains, which eats the gain of ``--workers 2`` on a short search). :func:`start`
launches the server without waiting, so the command line can start it before it imports torch
itself and both imports run side by side.

A worker dies with the process that started it (:func:`die_with_parent`): on Linux the kernel
kills it (``PR_SET_PDEATHSIG``); everywhere, it checks before every write that its parent is still
there, and a watch thread checks every second, so no worker writes into a results directory
whose lock is gone.

This module imports nothing heavy: :mod:`dlutil.cli` calls :func:`start` first thing.
"""
import ctypes
import multiprocessing
import os
import signal
import threading
import time

from dlutil import files

# what a worker needs before it trains; a module that fails to import is skipped by the server
# (torch._dynamo: the first optimizer a process makes imports it, over a second of CPU;
# hyperopt: every def.py imports it. Not sklearn: a worker that needs it imports it alongside
# the others, where preloading it would delay every worker's start)
PRELOAD = ['dlutil._server_dies_with_parent', 'numpy', 'torch', 'torch._dynamo',
           'hyperopt', 'base_model', 'batch_generator', 'constraints',
           'dlutil.search.trial', 'dlutil.search.executors']


def worker_context():
    """The multiprocessing context for worker processes: the preloaded forkserver, else spawn
    (where there is no forkserver: not POSIX)."""
    if 'forkserver' not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('spawn')
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)  # takes effect when the server starts
    return context


def start():
    """Launch the forkserver now (it imports :data:`PRELOAD` in the background); returns at once."""
    context = worker_context()
    if context.get_start_method() == 'forkserver':
        from multiprocessing import forkserver
        forkserver.ensure_running()


def tune_malloc():
    """Keep glibc from handing each batch's activation memory back to the kernel.

    glibc adapts its mmap and trim thresholds to what was freed so far; depending on a process's
    history, the few-MB tensors of every batch are then unmapped and faulted in again, which
    costs CPU training 30–40 % (see benchmarks/README.md). Fixed thresholds make that never
    happen. Other C libraries are left alone.
    """
    try:
        libc = ctypes.CDLL('libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 * 2 ** 20)
    mallopt(M_TRIM_THRESHOLD, 2 ** 30)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent, poll=1.0):
    """End this process as soon as process ``parent`` is gone (see the module's docstring)."""
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the checks below

    def check():
        if os.getppid() != parent:
            os._exit(1)  # now: not one more byte into the results directory
    check()  # the parent may have gone before prctl
    files.guard_writes(check)

    def watch():
        while True:
            check()
            time.sleep(poll)
    threading.Thread(target=watch, name='parent-watch', daemon=True).start()
