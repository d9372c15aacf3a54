"""Worker processes that start fast: forked from a server that has already imported torch.

Forking the search process itself is unsafe (torch's thread pools, CUDA); spawning is safe but
every worker then spends seconds of CPU importing torch before it trains anything, which eats
the gain of ``--workers 2`` on a short search. A multiprocessing *forkserver* is a clean,
single-threaded process: it imports :data:`PRELOAD` once and forks each worker from itself in
milliseconds. :func:`start` launches it without waiting, so the command line can start it before
it imports torch itself and both imports run side by side.

This module imports nothing heavy: :mod:`dlutil.cli` calls :func:`start` first thing.
"""
import multiprocessing

# what a worker needs before it trains; a module that fails to import is skipped by the server
# (torch._dynamo: the first optimizer a process makes imports it, over a second of CPU;
# hyperopt: every def.py imports it. Not sklearn: a worker that needs it imports it alongside
# the others, where preloading it would delay every worker's start)
PRELOAD = ['dlutil.search._server_dies_with_parent', 'numpy', 'torch', 'torch._dynamo',
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
