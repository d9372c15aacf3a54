"""Batches simulated on the fly: a stream of examples from a simulator, fed by processes.

Example ``i`` of a stream is simulated with the seed ``example_seeds(derive_seed(seed,
stream), i)`` (a SplitMix64 hash of the stream's seed and the index) and examples are served in
index order, so the stream depends on the seed alone: never on the number
of processes, on which process finished first, nor on the chunking. The state a checkpoint needs
is two integers, the seed and the index of the next example, so a resumed trial continues the
stream exactly where it stopped.
"""
import functools
import itertools
import random
import time
from collections import deque

import numpy as np

from dlutil.simulation._worker import (SimulationError, describe, example_seeds, simulate,
                                       takes_rng)
from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.simulation.pool import SimulationPool

TRAINING, VALIDATION, TEST = 0, 1, 2
STREAMS = {'validation': VALIDATION, 'test': TEST}


@functools.lru_cache(maxsize=64)
def _stream_seed(seed, stream):
    from dlutil.rng import derive_seed  # deferred: the workers import this package, not torch
    return derive_seed(seed, stream)


def _positive(value, name, problems, zero=False):
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        problems.append(f'{name} must be an integer >= {low}, got {value!r}')


def _shape(value, name, problems):
    try:
        shape = tuple(int(d) for d in value)
    except (TypeError, ValueError):
        problems.append(f'{name} must be a tuple of positive integers, got {value!r}')
        return None
    if not shape or any(d < 1 for d in shape):
        problems.append(f'{name} must be a tuple of positive integers, got {value!r}')
        return None
    return shape


class SimulationBatchGenerator:
    """Training batches ``(x, y)`` drawn afresh from a simulator, ``batches_per_epoch`` an epoch.

    ``processes`` simulation processes run ahead of training by up to ``queue_capacity``
    examples (the bounded queue); training waits only when they fall behind. Each epoch continues
    the stream: no example is ever served twice.

    Parameters
    ----------
    simulator: callable
        ``simulator() -> (data, label)``, numpy arrays of ``input_shape`` and ``output_shape``
        (defiNETti's contract), drawing its randomness from ``numpy.random`` or ``random``
        (seeded per example); or ``simulator(rng)`` taking a ``numpy.random.Generator``. It must
        be picklable (a module-level function or a ``functools.partial`` of one) unless
        ``processes=0``.
    input_shape: tuple of int
        Shape of one example's ``data``; batches of ``x`` have shape (batch_size, *input_shape).
    output_shape: tuple of int
        Shape of one ``label`` (e.g. (2,) for a one-hot label of two classes).
    batch_size: int
        Examples per batch.
    batches_per_epoch: int
        Batches of one epoch (``len(generator)``).
    processes: int
        Simulation processes; 0 simulates in this process, between batches (for debugging and
        simulators too cheap to be worth a process).
    queue_capacity: int
        How many examples the processes may simulate ahead of training (at least one batch).
    seed: int
        Seed of the training stream (the search reseeds it per trial) and, for good, of the
        fixed validation and test sets.
    dtype, label_dtype: numpy dtype
        Of the batches' ``x`` and ``y``.
    check: bool
        Simulate one example in this process now, so that a broken simulator is reported before
        any process starts or any training runs.
    timeout: float or None
        Seconds without any example from the processes after which the simulator is reported
        as hung (SimulationError naming it and the examples awaited) and the processes are
        stopped; None waits forever. Not applied with ``processes=0``.
    start_method: 'fork', 'spawn', 'forkserver' or None
        How the processes start; None: fork on Linux, spawn elsewhere
        (:mod:`dlutil.simulation.pool`).

    Attributes
    ----------
    simulated: int
        Examples received from the simulator so far (sets included).
    wait_seconds: float
        Time spent waiting for simulations while serving training batches.
    """

    def __init__(self, simulator, input_shape, output_shape, batch_size=50,
                 batches_per_epoch=100, processes=1, queue_capacity=250, seed=0,
                 dtype='float32', label_dtype='float32', check=True, timeout=600,
                 start_method=None):
        problems = []
        if not callable(simulator):
            problems.append(f'simulator must be a function returning (data, label), got '
                            f'{type(simulator).__name__}')
        input_shape = _shape(input_shape, 'input_shape', problems)
        output_shape = _shape(output_shape, 'output_shape', problems)
        _positive(batch_size, 'batch_size', problems)
        _positive(batches_per_epoch, 'batches_per_epoch', problems)
        _positive(processes, 'processes', problems, zero=True)
        _positive(queue_capacity, 'queue_capacity', problems)
        _positive(seed, 'seed', problems, zero=True)
        if problems:
            raise ValueError('SimulationBatchGenerator: ' + '; '.join(problems))
        self.simulator, self.name = simulator, describe(simulator)
        self.input_shape, self.output_shape = input_shape, output_shape
        self.batch_size, self.batches_per_epoch = int(batch_size), int(batches_per_epoch)
        self.processes, self.queue_capacity = int(processes), int(queue_capacity)
        self.dtype, self.label_dtype = np.dtype(dtype), np.dtype(label_dtype)
        self.fixed_seed = int(seed)
        self.pool = (SimulationPool(simulator, input_shape, output_shape, self.processes,
                                    self.dtype, self.label_dtype, timeout=timeout,
                                    start_method=start_method)
                      if self.processes else None)
        # examples per task: enough that every process has two tasks within the capacity
        self.chunk = max(1, min(self.batch_size,
                                self.queue_capacity // (2 * max(self.processes, 1))))
        self.simulated, self.wait_seconds = 0, 0.0
        self._tags = itertools.count()
        self._sets = {}
        self.reseed(seed)
        if check:
            self._simulate_here(self.seed, TRAINING, 0, 1)

    # -- the stream ---------------------------------------------------------------------------
    def reseed(self, seed):
        """Restart the training stream from example 0 of ``seed``."""
        self._restart(int(seed), 0)

    def get_state(self):
        """The stream's position as plain data: ``{'seed', 'next'}`` (saved in checkpoints)."""
        return {'seed': self.seed, 'next': self.next}

    def set_state(self, state):
        """Continue the stream at the position :meth:`get_state` returned."""
        self._restart(int(state['seed']), int(state['next']))

    state_dict, load_state_dict = get_state, set_state

    def _restart(self, seed, next_index):
        self.seed, self.next = seed, next_index
        self._tag = next(self._tags)  # results of the old stream still on their way are dropped
        self._ready = {}               # start -> (xs, ys) received, not yet served
        self._order = deque()          # starts of the submitted chunks, in order
        self._offset = 0               # rows of the first chunk already served
        self._submitted = next_index   # end of the submitted range
        if self.pool is not None:
            self.pool.discard_tasks()

    def __len__(self):
        return self.batches_per_epoch

    def __iter__(self):
        for _ in range(self.batches_per_epoch):
            yield self.next_batch()

    def stream(self):
        """Batches without end (``itertools.islice(generator.stream(), n)`` takes n)."""
        while True:
            yield self.next_batch()

    def next_batch(self):
        """The next ``batch_size`` examples of the stream: ``(x, y)``."""
        n = self.batch_size
        x = np.empty((n,) + self.input_shape, self.dtype)
        y = np.empty((n,) + self.output_shape, self.label_dtype)
        filled = 0
        while filled < n:
            self._top_up()
            start = self._order[0]
            xs, ys = self._chunk(start)
            take = min(n - filled, len(xs) - self._offset)
            x[filled:filled + take] = xs[self._offset:self._offset + take]
            y[filled:filled + take] = ys[self._offset:self._offset + take]
            filled += take
            self._offset += take
            if self._offset == len(xs):
                self._order.popleft()
                del self._ready[start]
                self._offset = 0
        self.next += n
        return x, y

    def _top_up(self):
        """Submit chunks until ``queue_capacity`` examples (and the next batch) are under way."""
        ahead = max(self.queue_capacity, self.batch_size)
        while self._submitted - self.next < ahead or not self._order:
            start, count = self._submitted, self.chunk
            self._order.append(start)
            if self.pool is None:
                self._ready[start] = None  # simulated when needed, in this process
            else:
                self.pool.submit(self._tag, start, self._seeds(self.seed, TRAINING, start, count))
            self._submitted += count

    def _chunk(self, start):
        if self.pool is None:
            if self._ready[start] is None:
                self._ready[start] = self._simulate_here(self.seed, TRAINING, start, self.chunk)
            return self._ready[start]
        tick = time.perf_counter()
        while start not in self._ready:
            self._receive()
        self.wait_seconds += time.perf_counter() - tick
        return self._ready[start]

    def _receive(self):
        """Take one result from the processes and file it; raise what the simulator did.

        After an error the processes are stopped and the stream restarts at the first example
        not served, so the generator may be used again.
        """
        waiting = (f', waiting for examples {self._order[0]}-{self._order[0] + self.chunk - 1} '
                   f'of the training stream' if self._order else '')
        try:
            tag, start, xs, ys, error = self.pool.get(waiting)
        except SimulationError:
            self.close()
            raise
        if error is not None and (tag == self._tag or tag in self._sets):
            self.close()
            raise SimulationError(error)
        if tag == self._tag:
            self._ready[start] = (xs, ys)
        elif tag in self._sets:
            self._sets[tag][start] = (xs, ys)
        else:
            return  # a stream that was restarted since
        self.simulated += len(xs)

    @staticmethod
    def _seeds(seed, stream, start, count):
        return example_seeds(_stream_seed(seed, stream), start, count)

    def _simulate_here(self, seed, stream, start, count):
        """Simulate in this process, leaving its global RNGs as they were."""
        saved = random.getstate(), np.random.get_state()
        try:
            xs = np.empty((count,) + self.input_shape, self.dtype)
            ys = np.empty((count,) + self.output_shape, self.label_dtype)
            use_rng = takes_rng(self.simulator)
            for j, s in enumerate(self._seeds(seed, stream, start, count)):
                xs[j], ys[j] = simulate(self.simulator, s, use_rng, self.input_shape,
                                        self.output_shape, start + j, self.name)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
        self.simulated += count
        return xs, ys

    # -- fixed sets ---------------------------------------------------------------------------
    def sample(self, n, stream='validation'):
        """``n`` examples ``(X, Y)`` of a fixed stream (``'validation'`` or ``'test'``).

        They depend on the constructor's ``seed`` alone (not on :meth:`reseed`), so every trial
        of a search validates on the same examples, and never on training examples.
        """
        if stream not in STREAMS:
            raise ValueError(f'stream must be one of {sorted(STREAMS)}, got {stream!r}')
        _problems = []
        _positive(n, 'n', _problems)
        if _problems:
            raise ValueError('SimulationBatchGenerator.sample: ' + _problems[0])
        key = STREAMS[stream]
        if self.pool is None:
            return self._simulate_here(self.fixed_seed, key, 0, n)
        tag = next(self._tags)
        self._sets[tag] = received = {}
        try:
            starts = range(0, n, self.chunk)
            for start in starts:
                count = min(self.chunk, n - start)
                self.pool.submit(tag, start, self._seeds(self.fixed_seed, key, start, count))
            while len(received) < len(starts):
                self._receive()
        finally:
            del self._sets[tag]
        X = np.concatenate([received[s][0] for s in starts])
        Y = np.concatenate([received[s][1] for s in starts])
        return X, Y

    def validation_generator(self, n, batch_size=None):
        """A :class:`~dlutil.data.matrix.MatrixBatchGenerator` of ``n`` validation examples, drawn
        once (the same for every trial)."""
        return MatrixBatchGenerator(*self.sample(n, 'validation'), batch_size=batch_size)

    def test_generator(self, n, batch_size=None):
        """Like :meth:`validation_generator`, from the test stream: examples no trial trained or
        validated on."""
        return MatrixBatchGenerator(*self.sample(n, 'test'), batch_size=batch_size)

    # -- processes ----------------------------------------------------------------------------
    def close(self):
        """Stop the simulation processes (they start again if the generator is used again)."""
        if self.pool is not None:
            self.pool.close()
            self._restart(self.seed, self.next)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f'SimulationBatchGenerator({self.name}, input_shape={self.input_shape}, '
                f'output_shape={self.output_shape}, batch_size={self.batch_size}, '
                f'processes={self.processes}, queue_capacity={self.queue_capacity}, '
                f'seed={self.seed}, next={self.next})')
