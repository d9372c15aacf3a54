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
import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
import time

from tqdm.std import tqdm

from dlutil import files

# what a worker needs before it trains; a module that fails to import is skipped by the server
# (torch._dynamo: the first optimizer a process makes imports it, over a second of CPU;
# hyperopt: every def.py imports it. Not sklearn: a worker that needs it imports it alongside
# the others, where preloading it would delay every worker's start)
PRELOAD = ['dlutil._server_dies_with_parent', 'numpy', 'torch', 'torch._dynamo',
           'hyperopt', 'base_model', 'batch_generator', 'constraints',
           'dlutil.search.trial', 'dlutil.search.executors.local']


# the folder that holds the dlutil package (a checkout, or site-packages)
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _children_import_this_package():
    """Put :data:`PACKAGE_ROOT` first on ``PYTHONPATH``, for the processes we start.

    A forkserver (Python 3.11) starts with the current folder on its path, not this process's
    ``sys.path``: run as ``python /checkout/main.py`` from another folder, it would find no
    dlutil, or another installed copy, and every worker would die unpickling its first job.
    """
    paths = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    if not paths or paths[0] != PACKAGE_ROOT:
        os.environ['PYTHONPATH'] = os.pathsep.join(
            [PACKAGE_ROOT] + [p for p in paths if p != PACKAGE_ROOT])


def worker_context():
    """The multiprocessing context for worker processes: the preloaded forkserver, else spawn
    (where there is no forkserver: not POSIX); either imports this process's dlutil."""
    _children_import_this_package()
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


def thread_lock_for_tqdm():
    """Give tqdm a thread lock in a worker process.

    Otherwise tqdm makes a multiprocessing lock for its bars (hidden ones too): a named
    semaphore, which a worker ended by a signal (as an interrupted search ends its workers)
    leaves behind, and multiprocessing's resource tracker then warns about it on stderr.
    """
    tqdm.set_lock(threading.RLock())


class LogForwarder:
    """The log lines of worker processes, shown by this process (through tqdm, once each).

    A worker's own stderr would tear through this process's progress bars; instead, each worker
    calls :func:`send_logs` with :attr:`queue`, and a thread here hands the records to this
    process's ``dlutil`` logger. :meth:`stop` shows what is still queued.

    Parameters
    ----------
    context: multiprocessing context
        The workers' (:func:`worker_context`).
    """

    def __init__(self, context):
        self.queue = context.Queue()
        self.level = logging.getLogger('dlutil').getEffectiveLevel()
        self.listener = logging.handlers.QueueListener(self.queue, _ToLogger())
        self.listener.start()

    def stop(self):
        """Show the lines still queued and end the thread (again: nothing)."""
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()


class _ToLogger(logging.Handler):
    def handle(self, record):
        logging.getLogger('dlutil').handle(record)


def send_logs(queue, level):
    """In a worker: send the ``dlutil`` logger's records of ``level`` and above to ``queue``
    (a :class:`LogForwarder`'s)."""
    logger = logging.getLogger('dlutil')
    logger.handlers[:] = [logging.handlers.QueueHandler(queue)]
    logger.setLevel(level)
    logger.propagate = False


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
