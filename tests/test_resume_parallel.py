"""Crash-safe resume, parallel workers, search spaces, TPE and the results-directory lock."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dlutil.search import results
from dlutil.search import schedule
from conftest import CLASSIFIER_DEF, ROOT, default_sigint, write_def

LEARNING_CURVE = os.path.join(ROOT, 'benchmarks', 'defs', 'learning_curve.py')
# dropout makes the RNG state matter, shuffling makes the generator state matter
DROPOUT_DEF = CLASSIFIER_DEF.replace('nn.ReLU(),', 'nn.ReLU(), nn.Dropout(0.3),')


def comparable(result):
    """Everything a search leaves that must not depend on crashes or workers."""
    out = {'search.csv': (result / 'search.csv').read_text(),
           'best.json': json.loads((result / 'best.json').read_text())}
    for trial in sorted(os.listdir(result / 'trials')):
        rows = results.read_csv(result / 'trials' / trial / 'history.csv')
        out[trial] = [{k: v for k, v in r.items() if k != 'train_seconds'} for r in rows]
        out[trial + '/config'] = (result / 'trials' / trial / 'config.json').read_text()
    return out


def epochs_done(result):
    total = 0
    for trial in os.listdir(result / 'trials') if (result / 'trials').exists() else []:
        path = result / 'trials' / trial / 'history.csv'
        if path.exists():
            total += max(0, len(path.read_text().splitlines()) - 1)
    return total


def command(def_path, data, result, *extra):
    return [sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(def_path), '-d', str(data),
            '-r', str(result), '-y', '-ep', '9', '-bs', '32', '--seed', '11', '-c',
            '--threads', '1', *extra]


# runs the CLI and SIGKILLs itself just before its KILL_AT_WRITE-th write: a real kill at an
# exact point, not a timer racing the work
KILLER = """
import os, signal, sys
from dlutil.search import results
count = [0]
def check():
    count[0] += 1
    if count[0] == int(os.environ['KILL_AT_WRITE']):
        os.kill(os.getpid(), signal.SIGKILL)
results.guard_writes(check)
from dlutil import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigkill_at_several_points_resumes_to_the_uninterrupted_result(h5_data, tmp_path):
    def_path = write_def(tmp_path, DROPOUT_DEF)
    full = subprocess.run(command(def_path, h5_data, tmp_path / 'full'), capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    total = epochs_done(tmp_path / 'full')

    cut = tmp_path / 'cut'
    for write in (5, 3 * total // 4, 3 * total // 4, total):  # ~3 writes an epoch
        killed = subprocess.run([sys.executable, '-c', KILLER] + command(def_path, h5_data, cut)[2:],
                                env=dict(os.environ, KILL_AT_WRITE=str(write)),
                                capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert 0 < epochs_done(cut) < total
    resumed = subprocess.run(command(def_path, h5_data, cut), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(cut) == comparable(tmp_path / 'full')


def test_two_workers_give_the_same_results_as_one(h5_data, tmp_path):
    def_path = write_def(tmp_path, DROPOUT_DEF)
    for name, workers in (('one', '1'), ('two', '2')):
        run = subprocess.run(command(def_path, h5_data, tmp_path / name, '--workers', workers),
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    assert comparable(tmp_path / 'one') == comparable(tmp_path / 'two')


def test_a_second_process_on_the_same_results_is_refused(cli, classifier_def, h5_data, tmp_path):
    store = results.ResultStore(tmp_path / 'res')
    with store.lock():
        code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '-y',
                        '-ep', 1)
    assert code == 1 and f'is in use by process {os.getpid()}' in err
    assert cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-ep', 1,
               '-bs', 32)[0] == 0  # released


def test_a_changed_def_py_is_reported(cli, classifier_def, h5_data, tmp_path):
    args = ['-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-ep', 1,
            '-bs', 32, '-c']
    assert cli(*args)[0] == 0
    classifier_def.write_text(CLASSIFIER_DEF.replace('0.003', '0.004'))
    code, err = cli(*args)  # finished trials trained again give the same: it continues
    assert code == 0 and 'def.py (get_config changed)' in err and 'gave the same' in err
    assert cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '-e')[0] == 0


def run_learning_curve(cli, tmp_path, name, *extra):
    (tmp_path / 'data').mkdir(exist_ok=True)
    code, err = cli('-f', LEARNING_CURVE, '-d', tmp_path / 'data', '-r', tmp_path / name, '-y',
                    '-ep', 9, '--seed', 2, '-c', *extra)
    assert code == 0, err
    return tmp_path / name


def test_configurations_come_from_get_space(cli, tmp_path):
    result = run_learning_curve(cli, tmp_path, 'a')
    trials = sorted(os.listdir(result / 'trials'))
    for trial in trials:
        config = json.loads((result / 'trials' / trial / 'config.json').read_text())
        point = json.loads((result / 'trials' / trial / 'space_point.json').read_text())
        assert set(config) == {'lr', 'momentum', 'width', 'dropout', 'weight_decay'}
        assert 1e-5 <= config['lr'] <= 1 and 0 <= config['momentum'] <= 0.99
        assert config['width'] == ['narrow', 'medium', 'wide'][point['width'][0]]
        assert config['lr'] == point['lr'][0]
    again = run_learning_curve(cli, tmp_path, 'b')
    assert comparable(result) == comparable(again)


def test_tpe_proposes_from_observations_and_is_reproducible(cli, tmp_path):
    rand = run_learning_curve(cli, tmp_path, 'random', '--trials', 60)
    tpe = run_learning_curve(cli, tmp_path, 'tpe', '--sampler', 'tpe', '--trials', 60)
    config = lambda result, i: json.loads(
        (result / 'trials' / results.trial_id(i) / 'config.json').read_text())
    first_bracket = schedule.plan(9, 3, 60)[0].sizes[0]
    # the first bracket has nothing to learn from: random; later ones differ from random
    assert all(config(rand, i) == config(tpe, i) for i in range(first_bracket))
    later = range(first_bracket, 60)
    # a third stay random by design, and brackets wait for 2(d + 1) results at one budget
    assert sum(config(rand, i) != config(tpe, i) for i in later) >= len(later) // 3
    assert comparable(run_learning_curve(cli, tmp_path, 'tpe2', '--sampler', 'tpe',
                                         '--trials', 60)) == comparable(tpe)


def test_tpe_needs_a_space(cli, classifier_def, h5_data, tmp_path):
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y',
                    '--sampler', 'tpe')
    assert code == 1 and '--sampler tpe needs a hyperopt search space' in err


def test_trials_budget_repeats_and_cuts_iterations():
    one = schedule.plan(9, 3)
    assert [(p.s, p.sizes) for p in one] == [(2, (9, 3, 1)), (1, (5, 1)), (0, (3,))]
    capped = schedule.plan(9, 3, trials=12)
    assert [(p.s, p.sizes) for p in capped] == [(2, (9, 3, 1)), (1, (3, 1))]
    longer = schedule.plan(9, 3, trials=40)
    assert sum(p.sizes[0] for p in longer) == 40
    assert [p.iteration for p in longer] == [0, 0, 0, 1, 1, 1, 2]
    assert [p.first for p in longer][:4] == [0, 9, 14, 17]
    assert longer[-1].sizes == (6, 2, 1) and longer[-1].first == 34
    with pytest.raises(ValueError, match='--trials must be at least 1'):
        schedule.plan(9, 3, trials=0)


HOLD = """
HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hold')


class Held(Model):
    def run_epoch(self, *args, **kwargs):
        while self.epochs_done >= 1 and os.path.exists(HOLD):  # released by the test
            time.sleep(0.01)
        return super().run_epoch(*args, **kwargs)


Model = Held
"""


def test_ctrl_c_stops_the_workers_and_the_search_continues(tmp_path):
    (tmp_path / 'data').mkdir()
    def_path = tmp_path / 'def.py'
    def_path.write_text(open(LEARNING_CURVE).read() + HOLD)
    args = lambda name, workers: [sys.executable, os.path.join(ROOT, 'main.py'), '-f',
                                  str(def_path), '-d', str(tmp_path / 'data'), '-r',
                                  str(tmp_path / name), '-y', '-ep', '9', '--seed', '4', '-c',
                                  '--threads', '1', '--workers', workers]
    # every trial waits at its second epoch while 'hold' exists: the search cannot finish
    # before Ctrl-C, however slow or fast the machine
    (tmp_path / 'hold').touch()
    # Ctrl-C reaches the command even where the test runs in the background (SIGINT ignored)
    process = subprocess.Popen(args('cut', '2'), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 180
    while epochs_done(tmp_path / 'cut') < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and 're-run the same command' in err
    assert 'Traceback' not in err
    assert 'resource_tracker' not in err  # no "leaked semaphore objects" warning
    assert not list((tmp_path / 'cut').rglob('.*.tmp'))  # a clean stop leaves no temporaries
    (tmp_path / 'hold').unlink()
    for name, workers in (('cut', '2'), ('full', '1')):
        run = subprocess.run(args(name, workers), capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    assert comparable(tmp_path / 'cut') == comparable(tmp_path / 'full')


def test_workers_import_this_checkout_when_run_from_another_folder(tmp_path):
    """python /checkout/main.py from elsewhere, nothing on PYTHONPATH: the forkserver the workers
    come from starts with its own path, and must still import this checkout's dlutil."""
    (tmp_path / 'data').mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f', LEARNING_CURVE,
                          '-d', 'data', '-r', 'res', '-y', '-ep', '3', '--trials', '2',
                          '--seed', '1', '-c', '--threads', '1', '--workers', '2'],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert len(results.read_csv(tmp_path / 'res' / 'search.csv')) >= 2
