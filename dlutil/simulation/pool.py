"""Simulation processes: a task queue in, a result queue out, and nothing left behind.

The processes are started with ``spawn`` (a clean interpreter: no copy of the parent's torch
threads or CUDA state), so the simulator travels to them pickled, by reference: it must be a
function defined at module level (or a ``functools.partial`` of one). A simulator defined in a
``def.py`` works too: the processes load that file again by its path.

The processes are daemons (they end when the parent exits normally), ignore Ctrl-C (the parent
stops them), and, should the parent be killed, notice it within
:data:`~dlutil.simulation._worker.POLL_SECONDS` of their next idle moment and exit.
"""
import io
import multiprocessing
import importlib.machinery
import pickle
import queue
import sys
import time
import types
import weakref

from dlutil.simulation._worker import (SimulationError, describe, load_function, takes_rng,
                                       work)

TICK_SECONDS = 0.5  # how often a waiting parent checks that its processes still live


class _Pickler(pickle.Pickler):
    """Pickles functions of modules loaded from a path (a def.py) by that path."""

    def reducer_override(self, obj):
        if isinstance(obj, types.FunctionType) and '<' not in obj.__qualname__:
            module = sys.modules.get(obj.__module__)
            path = obj.__globals__.get('__file__')
            if path and (module is None or module.__dict__ is not obj.__globals__
                         or not _importable(obj.__module__)):
                return load_function, (obj.__module__, path, obj.__qualname__)
        return NotImplemented


def _importable(name):
    """Whether another process can import ``name`` (a def.py registered in sys.modules under
    a name of its own cannot)."""
    top = name.partition('.')[0]
    if top in sys.builtin_module_names:
        return True
    try:  # sys.path alone: sys.modules would answer for a def.py loaded from its path
        return importlib.machinery.PathFinder.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def pickled(simulator):
    """The simulator as bytes for the simulation processes; TypeError if it cannot travel."""
    name = describe(simulator)
    buffer = io.BytesIO()
    try:
        _Pickler(buffer).dump(simulator)
        return buffer.getvalue()
    except Exception as error:
        raise TypeError(
            f'simulator {name} cannot be sent to simulation processes ({type(error).__name__}: '
            f'{error}). Simulators must be picklable: define the function at module level (a '
            f'lambda or a nested function is not), and bind arguments with functools.partial('
            f'function, ...); or pass processes=0 to simulate in this process') from None


def _shutdown(processes, tasks, results):
    """Ask every process to end, then terminate those that do not within a second."""
    for process in processes:
        if process.is_alive():
            try:
                tasks.put(None)
            except (OSError, ValueError):
                break
    deadline = time.monotonic() + 1.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
    for q in (tasks, results):
        q.cancel_join_thread()  # unread results must not keep this process from exiting
        q.close()


class SimulationPool:
    """``processes`` simulation processes; each task is ``(tag, start, seeds)``: simulate the
    examples ``start, start + 1, ...`` with these seeds and send back ``(tag, start, xs, ys,
    error)``, in whatever order the processes finish.

    Parameters
    ----------
    simulator: callable
        ``simulator() -> (data, label)`` (or ``simulator(rng)``), picklable.
    input_shape, output_shape: tuple of int
        The declared shapes of ``data`` and ``label``.
    processes: int
        Number of simulation processes (at least 1).
    dtype, label_dtype: numpy dtype
        Of the stacked ``data`` and ``label`` arrays.
    """

    def __init__(self, simulator, input_shape, output_shape, processes, dtype, label_dtype):
        self.name = describe(simulator)
        self.payload = pickled(simulator)
        self.settings = {'name': self.name, 'rng': takes_rng(simulator),
                         'input_shape': tuple(input_shape), 'output_shape': tuple(output_shape),
                         'dtype': dtype, 'label_dtype': label_dtype}
        self.n_processes = processes
        self.processes = []
        self._finalizer = None

    @property
    def started(self):
        return self._finalizer is not None and self._finalizer.alive

    def start(self):
        if self.started:
            return
        context = multiprocessing.get_context('spawn')
        self.tasks, self.results = context.Queue(), context.Queue()
        self.processes = [context.Process(target=work, name=f'simulation-{i}', daemon=True,
                                          args=(self.tasks, self.results, self.payload,
                                                self.settings))
                          for i in range(self.n_processes)]
        for process in self.processes:
            process.start()
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, self.tasks,
                                           self.results)

    def submit(self, tag, start, seeds):
        self.start()
        self.tasks.put((tag, start, list(seeds)))

    def discard_tasks(self):
        """Drop the tasks no process has taken yet (their results would be thrown away)."""
        if not self.started:
            return
        try:
            while True:
                self.tasks.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass

    def get(self):
        """The next result ``(tag, start, xs, ys, error)``; SimulationError if a process died."""
        while True:
            try:
                return self.results.get(timeout=TICK_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    codes = ', '.join(f'{p.name} exit code {p.exitcode}' for p in dead)
                    self.close()
                    raise SimulationError(
                        f'a simulation process running simulator {self.name} died ({codes}); '
                        f'a negative code is the signal that killed it (-9: out of memory?, '
                        f'-11: a crash in compiled code)') from None

    def close(self):
        """Stop the processes (idempotent); the pool starts afresh on the next submit."""
        if self._finalizer is not None:
            self._finalizer()
