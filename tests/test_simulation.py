"""SimulationBatchGenerator: the seeded stream, its resume, fixed sets, errors, and processes.

Simulation processes are forked on Linux (spawned where a test asks: about a second each on a
loaded machine), and each test starts as few as it needs.
"""
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import exchangeable_simulators as sims
from batch_generator import MatrixBatchGenerator, SimulationBatchGenerator, SimulationError

HERE = os.path.dirname(os.path.abspath(__file__))


def batches(generator, n):
    return [generator.next_batch() for _ in range(n)]


def same(a, b):
    return all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb)
               in zip(a, b)) and len(a) == len(b)


def test_stream_is_the_same_for_any_number_of_processes_and_chunking():
    made = {}
    # 0 processes: this process; 1 and 2 with different capacities, so different chunks
    for processes, capacity in ((0, 250), (1, 5), (2, 16)):
        with SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=7, processes=processes,
                                      queue_capacity=capacity, seed=11) as generator:
            made[processes] = batches(generator, 4)
            assert generator.get_state() == {'seed': 11, 'next': 28}
    assert same(made[0], made[1]) and same(made[0], made[2])
    x, y = made[0][0]
    assert x.shape == (7, 4, 3) and y.shape == (7, 1) and x.dtype == np.float32
    np.testing.assert_allclose(y[:, 0], x.sum(axis=(1, 2)), rtol=1e-5)
    # every example is new: no repeats in the stream
    rows = np.concatenate([x for x, _ in made[0]]).reshape(28, -1)
    assert len(np.unique(rows, axis=0)) == 28
    # another seed, another stream
    other = SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=7, processes=0, seed=12)
    assert not np.array_equal(other.next_batch()[0], made[0][0][0])


def test_global_numpy_simulator_is_seeded_per_example():
    generator = SimulationBatchGenerator(sims.gaussian, (100, 1), (2,), batch_size=5,
                                         processes=0, seed=3)
    state = np.random.get_state()
    first = generator.next_batch()
    assert np.array_equal(np.random.get_state()[1], state[1])  # our RNGs left as they were
    generator.reseed(3)
    assert same([first], [generator.next_batch()])
    mu, sigma = first[1][:, 0], first[1][:, 1]
    assert np.all((mu > 0) & (mu < 1)) and np.all((sigma >= 6) & (sigma <= 10))


def test_resume_continues_the_stream_and_epochs_continue_it():
    with SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=4, batches_per_epoch=3,
                                  processes=1, seed=5) as generator:
        first = list(generator)
        assert len(generator) == 3 and len(first) == 3
        state = pickle.loads(pickle.dumps(generator.get_state()))  # plain data
        second = list(generator)
        generator.reseed(5)  # a new trial with the same seed starts over
        assert same(list(generator), first)
    resumed = SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=4,
                                       batches_per_epoch=3, processes=0, seed=99)
    resumed.load_state_dict(state)
    assert same(list(resumed), second)
    assert not same(second, first)


def test_fixed_sets_are_drawn_once_from_their_own_streams():
    with SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=4, processes=1,
                                  queue_capacity=4, seed=5) as generator:
        X, Y = generator.sample(10)
        generator.reseed(123)  # a trial's reseed does not move the validation set
        val = generator.validation_generator(10)
        assert isinstance(val, MatrixBatchGenerator) and val.n_samples == 10
        assert np.array_equal(val.X, X) and np.array_equal(val.Y, Y)
        test = generator.test_generator(10)
        training = np.concatenate([generator.next_batch()[0] for _ in range(3)])
    assert not np.array_equal(test.X, X)
    flat = lambda a: {row.tobytes() for row in a}
    assert not flat(X) & flat(training) and not flat(test.X) & flat(training)
    here = SimulationBatchGenerator(sims.small, (4, 3), (1,), processes=0, seed=5)
    assert np.array_equal(here.sample(10)[0], X)  # the same with or without processes


@pytest.mark.parametrize('simulator, words', [
    (sims.wrong_shape, ['exchangeable_simulators.wrong_shape', 'shape (3, 4)',
                        'declared shape is (4, 3)']),
    (sims.not_a_pair, ['exchangeable_simulators.not_a_pair', 'tuple (data, label)']),
])
def test_bad_simulator_output_is_named_before_any_work(simulator, words):
    with pytest.raises(SimulationError) as error:
        SimulationBatchGenerator(simulator, (4, 3), (1,), processes=1)
    for word in words:
        assert word in str(error.value)


def test_simulator_raising_in_a_process_stops_with_its_name():
    generator = SimulationBatchGenerator(sims.sometimes_raises, (4, 3), (1,), batch_size=8,
                                         processes=1, check=False, seed=0)
    with pytest.raises(SimulationError) as error:
        batches(generator, 6)
    message = str(error.value)
    assert 'exchangeable_simulators.sometimes_raises raised on example' in message
    assert 'RuntimeError: negative branch length' in message
    assert 'exchangeable_simulators.py, line' in message
    assert not generator.pool.started  # the processes were stopped


def test_a_process_that_dies_is_reported():
    generator = SimulationBatchGenerator(sims.dies, (4, 3), (1,), batch_size=8, processes=1,
                                         check=False, seed=0)
    with pytest.raises(SimulationError, match='died.*exit code 3'):
        batches(generator, 6)
    assert not any(p.is_alive() for p in generator.pool.processes)


def test_unpicklable_simulator_says_how_to_fix_it():
    # spawned processes need a pickle; forked ones (Linux, the default there) inherit it
    with pytest.raises(TypeError, match='module level.*functools.partial'):
        SimulationBatchGenerator(lambda: (np.zeros((4, 3)), np.zeros(1)), (4, 3), (1,),
                                 processes=1, start_method='spawn')
    # in this process, a lambda is fine
    generator = SimulationBatchGenerator(lambda: (np.ones((4, 3)), np.zeros(1)), (4, 3), (1,),
                                         batch_size=2, processes=0)
    assert generator.next_batch()[0].sum() == 24


def test_arguments_are_checked_together():
    with pytest.raises(ValueError) as error:
        SimulationBatchGenerator(sims.small, (4, 0), 2, batch_size=0, processes=-1)
    message = str(error.value)
    for word in ('input_shape', 'output_shape', 'batch_size', 'processes'):
        assert word in message


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().split(')')[-1].split()[0] != 'Z'  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='reads /proc to find the processes')
@pytest.mark.parametrize('simulator, method', [('small', 'spawn'), ('small', None),
                                               ('hangs_in_a_process', None)])
def test_processes_end_with_their_parent_even_when_it_is_killed(tmp_path, simulator, method):
    # idle processes, and processes in the middle of a simulation that never ends
    script = tmp_path / 'parent.py'
    script.write_text(textwrap.dedent(f'''
        import os, signal, sys
        sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]
        import exchangeable_simulators as sims
        from batch_generator import SimulationBatchGenerator
        if __name__ == '__main__':
            generator = SimulationBatchGenerator(sims.{simulator}, (4, 3), (1,), processes=2,
                                                 start_method={method!r})
            generator.pool.submit(-1, 0, [1])
            generator.pool.submit(-1, 1, [2])
            if {simulator!r} == 'small':
                generator.next_batch()
            print(' '.join(str(p.pid) for p in generator.pool.processes), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    '''))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # the processes poll for their parent every 0.2 s
    assert not any(_alive(pid) for pid in pids)


def test_close_leaves_no_process_and_the_generator_restarts():
    generator = SimulationBatchGenerator(sims.small, (4, 3), (1,), batch_size=4, processes=1,
                                         seed=1)
    first = generator.next_batch()
    processes = list(generator.pool.processes)
    generator.close()
    assert not any(p.is_alive() for p in processes)
    second = generator.next_batch()  # continues the stream with new processes
    generator.close()
    generator.reseed(1)
    assert same([generator.next_batch(), generator.next_batch()], [first, second])


def test_a_hung_simulator_is_named_after_the_timeout():
    generator = SimulationBatchGenerator(sims.hangs_in_a_process, (4, 3), (1,), batch_size=2,
                                         processes=1, timeout=1, seed=0)
    with pytest.raises(SimulationError, match=r'simulator exchangeable_simulators\.'
                                              r'hangs_in_a_process returned no example for '
                                              r'\d+ s \(timeout 1 s\), waiting for examples 0-'):
        generator.next_batch()
    assert not any(p.is_alive() for p in generator.pool.processes)


PLAIN = '''
    import sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from models import definetti

    def simulator():  # defined in __main__, as defiNETti's README does
        mu = np.random.normal()
        return np.random.normal(mu, 1, (20, 1)), np.array([mu])

    summary = definetti.train((20, 1), (1,), simulator, phi_net=[('fc', 8)], g=('moments', 1),
                              h_net=[('fc', 8), ('matmul',)], loss='l2', accuracy=None,
                              num_batches=6, batch_size=8, verbosity=3, sim_threads=2, seed=1)
    print('rows', len(summary))
'''


def _code(body):
    return textwrap.dedent(body).format(root=os.path.dirname(HERE))


def test_train_from_a_plain_script_without_main_guard(tmp_path):
    script = tmp_path / 'plain.py'
    script.write_text(_code(PLAIN))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'rows 2' in done.stdout and 'bootstrapping' not in done.stderr


def test_train_from_a_notebook_cell(tmp_path):
    # code read from stdin has no __file__, as a notebook cell: its simulator lives in __main__
    done = subprocess.run([sys.executable, '-'], input=_code(PLAIN), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'rows 2' in done.stdout


def test_spawn_without_main_guard_is_one_clear_line(tmp_path):
    script = tmp_path / 'spawned.py'
    script.write_text(_code('''
        import sys
        sys.path.insert(0, {root!r})
        import numpy as np
        from batch_generator import SimulationBatchGenerator, SimulationError

        def simulator():
            return np.zeros((4, 3)), np.zeros(1)

        try:
            SimulationBatchGenerator(simulator, (4, 3), (1,), processes=2, start_method='spawn')
        except SimulationError as error:
            print(error)
    '''))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == '', done.stderr[-3000:]
    line, = done.stdout.splitlines()
    assert 'without "if __name__ == \'__main__\':"' in line and 'sim_threads=0' in line
