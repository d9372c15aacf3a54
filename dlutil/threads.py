"""How many torch CPU threads a trial uses when ``--threads`` is not given.

torch's own default is one thread per core. On a machine that others share (a login node, a
laptop running a browser, several searches at once) that is the slow choice: torch's threads
synchronise at every operator, and one descheduled thread stalls the rest. Measured on the
2-core development machine while other processes kept it busy (``benchmarks/bench_threads.py``),
a small convolutional network trained 2–6× slower with 2 threads than with 1; and the
networks of this field (a few convolutions over 4 × 1000 inputs, batches of 100) gain little
beyond 4 threads even on an idle machine.

The rule:

1. ``OMP_NUM_THREADS`` set: that many threads, shared out between ``--workers``.
2. Otherwise the cores this process may use (its CPU affinity) that are idle now (the cores
   less the 1-minute load average, rounded), at most ``MAX_THREADS``, at least 1, shared
   out between ``--workers``.

``--threads T`` overrides it.
"""
import logging
import math
import os

log = logging.getLogger('dlutil')

MAX_THREADS = 4


def usable_cores():
    """Cores this process may run on (its affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(workers=1, environ=None, cores=None, load=None):
    """torch CPU threads per trial, and why.

    Parameters
    ----------
    workers: int
        Worker processes sharing the machine (``--workers``).
    environ: mapping or None
        The environment (default: ``os.environ``); read for ``OMP_NUM_THREADS``.
    cores: int or None
        Usable cores (default: :func:`usable_cores`).
    load: float or None
        The 1-minute load average (default: ``os.getloadavg()[0]``).

    Returns
    -------
    (int, str)
        Threads per trial (at least 1), and the reason in a few words.
    """
    environ = os.environ if environ is None else environ
    omp = str(environ.get('OMP_NUM_THREADS', '')).strip()
    if omp:
        try:
            value = int(omp)
        except ValueError:
            value = 0
        if value >= 1:
            return max(1, value // workers), f'OMP_NUM_THREADS={value}'
        log.warning(f'OMP_NUM_THREADS={omp!r} is not a positive integer: ignored')
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    idle = max(1, math.floor(cores - load + 0.5))
    threads = max(1, min(MAX_THREADS, cores, idle) // workers)
    return threads, f'{cores} cores, load {load:.1f}'
