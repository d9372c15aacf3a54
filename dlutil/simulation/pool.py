"""Simulation processes: a task queue in, a result queue out, and nothing left behind.

The processes are forked where the platform forks (Linux), as PyTorch's DataLoader does: they
inherit the simulator, so it needs no pickling, and the script that started them is not run
again, so ``train()`` works from a plain script without ``if __name__ == '__main__':``, from a
notebook, and with simulators defined in ``__main__`` (lambdas and closures included). Elsewhere
(macOS, Windows) they are spawned: the simulator travels pickled, by reference (a module-level
function or a ``functools.partial`` of one; a simulator of a ``def.py`` is loaded again from its
path), and a combination that cannot work (a notebook's simulator, a script without the main
guard) is refused before any process starts, in one line that says what to change.

The processes are daemons (they end when the parent exits normally) and ignore Ctrl-C (the
parent stops them). A watchdog thread in each checks every
:data:`~dlutil.simulation._worker.POLL_SECONDS` that the parent lives, so they end within a
second of its death, even in the middle of a simulation. A simulator that returns nothing for
``timeout`` seconds is reported by name and the processes are stopped.
"""
import importlib.machinery
import io
import multiprocessing
import os
import pickle
import queue
import re
import sys
import time
import types
import weakref

from dlutil.simulation._worker import (SimulationError, describe, load_function, takes_rng,
                                       work)

TICK_SECONDS = 0.5  # how often a waiting parent checks that its processes still live
_GUARD = re.compile(r'''^if\s+__name__\s*==\s*['"]__main__['"]\s*:''', re.MULTILINE)


def default_start_method():
    """'fork' on Linux (no pickling, no re-run of the script), 'spawn' elsewhere (macOS and
    Windows, where forking a process with threads is unsafe or impossible)."""
    if sys.platform.startswith('linux') and 'fork' in multiprocessing.get_all_start_methods():
        return 'fork'
    return 'spawn'


def spawn_problem(simulator, name):
    """Why spawned processes cannot run ``simulator`` from this ``__main__``, or None."""
    main = sys.modules.get('__main__')
    function = getattr(simulator, 'func', simulator)
    main_file = getattr(main, '__file__', None)
    if getattr(function, '__module__', None) == '__main__' and not main_file:
        return (f'simulator {name} is defined in a notebook or an interactive session, which '
                f'spawned simulation processes cannot import on this platform; define it in a '
                f'.py module you import, or pass sim_threads=0 (processes=0)')
    if main_file and getattr(main, '__spec__', None) is None and os.path.isfile(main_file):
        with open(main_file, errors='replace') as handle:
            guarded = _GUARD.search(handle.read())
        if not guarded:
            return (f'{main_file} starts simulation processes without "if __name__ == '
                    f'\'__main__\':"; on this platform (spawn) every process would run the '
                    f'script again: put the calls to train()/test() under that guard, or pass '
                    f'sim_threads=0 (processes=0)')
    return None


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
            f'function, ...); or pass processes=0 to simulate in this process (spawned processes '
            f'need a picklable simulator; forked ones, on Linux, do not)') from None


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

    def __init__(self, simulator, input_shape, output_shape, processes, dtype, label_dtype,
                 timeout=None, start_method=None):
        self.name = describe(simulator)
        self.start_method = start_method or default_start_method()
        if self.start_method not in ('fork', 'spawn', 'forkserver'):
            raise ValueError(f"start_method must be 'fork', 'spawn' or 'forkserver', got "
                             f"{start_method!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f'timeout must be a positive number of seconds or None, got '
                             f'{timeout!r}')
        self.timeout = timeout
        self.simulator = simulator
        self.payload = None
        if self.start_method != 'fork':
            problem = spawn_problem(simulator, self.name)
            if problem:
                raise SimulationError(problem)
            self.payload = pickled(simulator)
        self.settings = {'name': self.name, 'rng': takes_rng(simulator),
                         'input_shape': tuple(input_shape), 'output_shape': tuple(output_shape),
                         'dtype': dtype, 'label_dtype': label_dtype}
        self.n_processes = processes
        self.processes = []
        self._finalizer = None
        self._last_result = None

    @property
    def started(self):
        return self._finalizer is not None and self._finalizer.alive

    def start(self):
        if self.started:
            return
        context = multiprocessing.get_context(self.start_method)
        self.tasks, self.results = context.Queue(), context.Queue()
        # forked processes inherit the simulator itself; spawned ones unpickle the payload
        function = self.simulator if self.start_method == 'fork' else None
        self.processes = [context.Process(target=work, name=f'simulation-{i}', daemon=True,
                                          args=(self.tasks, self.results, self.payload,
                                                self.settings, function, os.getpid()))
                          for i in range(self.n_processes)]
        for process in self.processes:
            process.start()
        self._last_result = time.monotonic()
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

    def get(self, waiting_for=''):
        """The next result ``(tag, start, xs, ys, error)``; SimulationError if a process died,
        or if no result came for ``timeout`` seconds (``waiting_for`` names the examples)."""
        while True:
            try:
                result = self.results.get(timeout=TICK_SECONDS)
                self._last_result = time.monotonic()
                return result
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    codes = ', '.join(f'{p.name} exit code {p.exitcode}' for p in dead)
                    self.close()
                    raise SimulationError(
                        f'a simulation process running simulator {self.name} died ({codes}); '
                        f'a negative code is the signal that killed it (-9: out of memory?, '
                        f'-11: a crash in compiled code)') from None
                waited = time.monotonic() - self._last_result
                if self.timeout is not None and waited > self.timeout:
                    self.close()
                    raise SimulationError(
                        f'simulator {self.name} returned no example for {waited:.0f} s (timeout '
                        f'{self.timeout:g} s){waiting_for}: it hangs, or one example takes '
                        f'longer than the timeout (raise sim_timeout= / timeout=)') from None

    def close(self):
        """Stop the processes (idempotent); the pool starts afresh on the next submit."""
        if self._finalizer is not None:
            self._finalizer()
