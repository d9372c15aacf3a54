"""What runs in a simulation process: seeded calls of the simulator, checked and stacked.

This module imports numpy alone, so a simulation process starts quickly and stays small. Every
example gets its own seed from the parent (derived from the stream's seed and the example's
index): the process seeds ``random`` and ``numpy.random`` with it before the call (and passes a
``numpy.random.Generator`` made from it to a simulator that takes an ``rng`` argument), so an
example is the same whichever process simulates it.
"""
import importlib
import importlib.util
import inspect
import os
import pickle
import random
import signal
import sys
import threading
import time
import traceback

import numpy as np
from dlutil.errors import SimulationError  # noqa: F401 (re-exported)

POLL_SECONDS = 0.2  # how often a process checks that its parent still lives


def example_seeds(base, start, count):
    """Seeds of examples ``start … start + count − 1`` of the stream whose seed is ``base``.

    SplitMix64 (Steele et al. 2014) of ``base + index·φ``: nearby indices give unrelated
    63-bit seeds, computed for a whole chunk at once.
    """
    with np.errstate(over='ignore'):
        z = (np.uint64(base % 2 ** 64)
             + np.arange(start, start + count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return [int(v) for v in z >> np.uint64(1)]


def describe(simulator):
    """``module.name`` of a simulator (the function inside a ``functools.partial``)."""
    function = getattr(simulator, 'func', simulator)
    module = getattr(function, '__module__', None) or '?'
    name = getattr(function, '__qualname__', None) or type(function).__name__
    return f'{module}.{name}'


def takes_rng(simulator):
    """Whether the simulator wants ``simulator(rng)`` rather than ``simulator()``."""
    try:
        parameters = inspect.signature(simulator).parameters
    except (TypeError, ValueError):
        return False
    return 'rng' in parameters and parameters['rng'].default is inspect.Parameter.empty


def load_function(module, path, qualname):
    """A module-level function of ``module``, importing it from ``path`` if its name does not
    import (a def.py is loaded from its path as ``user_def``, a name no other process knows)."""
    if module not in sys.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            spec = importlib.util.spec_from_file_location(module, path)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[module] = loaded
            spec.loader.exec_module(loaded)
    found = sys.modules[module]
    for part in qualname.split('.'):
        found = getattr(found, part)
    return found


def simulate(simulator, seed, use_rng, input_shape, output_shape, index, name):
    """One example ``(data, label)`` as float arrays of the declared shapes, or SimulationError."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    try:
        made = simulator(np.random.default_rng(seed)) if use_rng else simulator()
    except Exception as error:
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if os.path.abspath(f.filename) != os.path.abspath(__file__)]
        where = f' ({frames[-1].filename}, line {frames[-1].lineno})' if frames else ''
        raise SimulationError(f'simulator {name} raised on example {index}{where}: '
                              f'{type(error).__name__}: {error}') from None
    if not isinstance(made, (tuple, list)) or len(made) != 2:
        raise SimulationError(f'simulator {name} must return a tuple (data, label); example '
                              f'{index} is a {type(made).__name__}')
    data, label = np.asarray(made[0]), np.asarray(made[1])
    for what, array, shape in (('data', data, input_shape), ('label', label, output_shape)):
        if array.shape != tuple(shape):
            raise SimulationError(f'simulator {name} returned {what} of shape {array.shape} on '
                                  f'example {index}; the declared shape is {tuple(shape)}')
        if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise SimulationError(f'simulator {name} returned {what} of dtype {array.dtype} on '
                                  f'example {index}; expected numbers')
        if not np.all(np.isfinite(array)):
            raise SimulationError(f'simulator {name} returned {what} with NaN or infinite '
                                  f'values on example {index}')
    return data, label


def _watch_parent(parent_pid):
    """Exit this process within :data:`POLL_SECONDS` of the parent's death, even while the
    simulator runs (a daemon thread: it needs the GIL, which Python code and most compiled
    simulators release often)."""
    def watch():
        while True:
            time.sleep(POLL_SECONDS)
            if os.getppid() != parent_pid:  # re-parented: the trainer is gone
                os._exit(0)
    threading.Thread(target=watch, name='parent-watchdog', daemon=True).start()


def work(tasks, results, payload, settings, simulator=None, parent_pid=None):
    """Process main loop: take ``(generation, start, seeds)`` tasks, put back stacked examples.

    ``simulator`` is the inherited function (fork), else ``payload`` its pickle (spawn). Ends on
    a ``None`` task, or within :data:`POLL_SECONDS` of the parent's death.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    if parent_pid is not None:
        if os.getppid() != parent_pid:
            return
        _watch_parent(parent_pid)
    results.cancel_join_thread()  # exit at once when told, even with results left unread
    if simulator is None:
        simulator = pickle.loads(payload)
    name, use_rng = settings['name'], settings['rng']
    x_shape, y_shape = settings['input_shape'], settings['output_shape']
    while True:
        task = tasks.get()
        if task is None:
            return
        generation, start, seeds = task
        try:
            xs = np.empty((len(seeds),) + tuple(x_shape), settings['dtype'])
            ys = np.empty((len(seeds),) + tuple(y_shape), settings['label_dtype'])
            for j, seed in enumerate(seeds):
                xs[j], ys[j] = simulate(simulator, seed, use_rng, x_shape, y_shape, start + j,
                                        name)
            results.put((generation, start, xs, ys, None))
        except SimulationError as error:
            results.put((generation, start, None, None, str(error)))
        except Exception as error:  # e.g. a value that does not fit the dtype
            results.put((generation, start, None, None,
                         f'simulator {name}: {type(error).__name__}: {error}'))
