"""Fault injection: a full disk, a kill between any two writes, a parent killed under its workers.

Faults are injected at exact points (the k-th write, the k-th checkpoint), never by racing a
timer against the work, so the tests hold on a loaded 2-core machine.
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dlutil import files
from dlutil.search import report, results
from conftest import ROOT
from test_search_state import CURVE, curve, search, state  # noqa: F401 (fixture)
from test_resume_parallel import epochs_done

FLAGS = ('-ep', 9, '--seed', 3)


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    from dlutil.search import report
    monkeypatch.setattr(report, 'write_report', lambda result_dir: None)


def temporaries(result):
    return [os.path.join(folder, name) for folder, _, names in os.walk(result)
            for name in names if name.endswith(results.TEMPORARY)]


def fail_on_call(n, error):
    """A function that raises ``error`` on its ``n``-th call and counts every call."""
    calls = {'n': 0}

    def check(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] == n:
            raise error
    check.calls = calls
    return check


TORCH_WRAPPED = RuntimeError('[enforce fail at inline_container.cc:664] . unexpected pos 1024 '
                             'vs 900: PytorchStreamWriter failed writing file data/0: file write '
                             'failed')


@pytest.mark.parametrize('where', ['torch.save', 'fsync'])
def test_a_full_disk_stops_the_search_and_freed_it_continues_exactly(cli, curve, tmp_path,
                                                                     monkeypatch, where):
    def_path, data = curve
    assert search(cli, def_path, data, tmp_path / 'full', *FLAGS)[0] == 0
    reference = state(tmp_path / 'full')

    if where == 'torch.save':  # the disk fills while torch.save writes a checkpoint
        real = torch.save
        fail = fail_on_call(7, TORCH_WRAPPED)
        monkeypatch.setattr(torch, 'save', lambda *a, **k: (fail(), real(*a, **k)))
    else:  # ... or while any file is flushed to disk
        real = os.fsync
        fail = fail_on_call(12, OSError(errno.ENOSPC, 'No space left on device'))
        monkeypatch.setattr(os, 'fsync', lambda fd: (fail(), real(fd)))
    result = tmp_path / 'cut'
    code, err = search(cli, def_path, data, result, *FLAGS)
    assert code == 1 and 'run the same command again' in err
    assert ('disk full or failing while writing' if where == 'torch.save'
            else 'disk full while writing') in err
    assert 'Traceback' not in err and fail.calls['n'] >= 7
    # nothing recorded as a trial's result, no half-written file left
    rows = results.read_csv(result / 'search.csv') if (result / 'search.csv').exists() else []
    assert all(row['status'] != 'error' for row in rows)
    assert not list(result.glob('trials/*/error.txt')) and not temporaries(result)

    monkeypatch.undo()  # space freed
    from dlutil.search import report
    monkeypatch.setattr(report, 'write_report', lambda result_dir: None)
    code, err = search(cli, def_path, data, result, *FLAGS)
    assert code == 0, err
    assert state(result) == reference


class Killed(BaseException):
    """Stands for SIGKILL: no ``except Exception`` handler catches it, nothing is written."""


def test_a_kill_between_any_two_writes_resumes_to_the_uninterrupted_result(cli, curve, tmp_path,
                                                                          monkeypatch):
    def_path, data = curve
    flags = ('-ep', 3, '--trials', 2, '--seed', 3)  # 3 rung evaluations, one of 3 epochs
    count = fail_on_call(0, None)
    monkeypatch.setattr(files, '_before_write', [count])
    # the report's redraws while the search runs come from a thread, at times of their own: the
    # writes counted here are the search's (the final page is still drawn, in order)
    monkeypatch.setattr(report.BackgroundReport, '_follow', lambda self: None)
    assert search(cli, def_path, data, tmp_path / 'full', *flags)[0] == 0
    reference, writes = state(tmp_path / 'full'), count.calls['n']
    assert writes >= 15  # search.json, configs, 3 files an epoch, search.csv, best.json

    for k in range(writes):  # killed after k writes, before write k + 1
        result = tmp_path / f'cut{k}'
        monkeypatch.setattr(files, '_before_write', [fail_on_call(k + 1, Killed())])
        with pytest.raises(Killed):
            search(cli, def_path, data, result, *flags)
        monkeypatch.setattr(files, '_before_write', [])
        code, err = search(cli, def_path, data, result, *flags)
        assert code == 0, f'killed after write {k}: {err}'
        assert state(result) == reference, f'killed after write {k}'
        assert not temporaries(result)
        shutil.rmtree(result)


def test_temporary_files_of_a_killed_writer_are_swept(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    left = [result / '.search.csv.abc123.tmp', result / 'trials' / 't0000' / '.last.pt.x.tmp']
    for path in left:
        path.write_bytes(b'half')
    assert search(cli, def_path, data, result)[0] == 0
    assert not temporaries(result)


def children(pid):
    """Process ids whose parent is ``pid`` (from /proc), zombies left out."""
    out = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != 'Z':
                out.append(int(entry))
    return out


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


HELD_DEF_TAIL = '''

import time

HOLD = os.path.join(HERE, 'hold')


class Held(Model):
    def run_epoch(self, *args, **kwargs):
        while self.epochs_done >= 1 and os.path.exists(HOLD):  # each trial's 2nd epoch waits
            time.sleep(0.01)
        return super().run_epoch(*args, **kwargs)


Model = Held
'''


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='reads processes from /proc')
def test_workers_die_with_their_killed_parent_and_write_nothing_after(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    np.save(data / 'x.npy', np.ones((8, 1), np.float32))
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'def.py').write_text(open(CURVE).read().replace(
        "random.choice(['ok', 'ok', 'ok', 'nan', 'flaky'])", "'ok'") + HELD_DEF_TAIL)
    (project / 'hold').touch()  # the search stands still once each trial has one epoch
    # a user's csv.py and metrics.py beside def.py never replace ours, in the workers either
    (project / 'csv.py').write_text('raise ImportError("the user\'s csv.py was imported")\n')
    (project / 'metrics.py').write_text('raise ImportError("the user\'s metrics.py")\n')
    result = tmp_path / 'res'
    # two configurations of 3 epochs, one per worker, each held at its second epoch
    parent = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(project / 'def.py'), '-d',
         str(data), '-r', str(result), '-y', '-ep', '3', '--eta', '4', '--trials', '2',
         '--workers', '2', '--threads', '1', '-c'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while parent.poll() is None and time.monotonic() < deadline and not (
            epochs_done(result) >= 2 and len(list(result.glob('trials/*/history.csv'))) == 2):
        time.sleep(0.05)
    assert parent.poll() is None, parent.stderr.read()
    # multiprocessing's resource tracker writes nothing and ends on its own once its pipe closes
    # the workers and the forkserver they are forked from: every descendant of the search
    tree, todo = [], [parent.pid]
    while todo:
        found = children(todo.pop())
        tree += found
        todo += found
    workers = [pid for pid in tree if b'resource_tracker' not in
               open(f'/proc/{pid}/cmdline', 'rb').read()]
    assert len(workers) >= 3  # the forkserver and two workers
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30  # the kernel ends them at once; generous for a busy CI
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), [open(f'/proc/{pid}/cmdline').read() for pid in workers if alive(pid)]
    (project / 'hold').unlink()  # were a worker still there, it would now train on
    # gone, so nothing more was written: each trial holds its one epoch
    for history in result.glob('trials/*/history.csv'):
        assert [row['epoch'] for row in results.read_csv(history)] == [1]


DIVERGING_DEF = """
import numpy as np
from torch import nn, optim

from base_model import ClassificationModel
from batch_generator import MatrixBatchGenerator


def get_train_generator(data_dir, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8)).astype(np.float32)
    Y = (X[:, 0] > 0).astype(np.int64)
    return MatrixBatchGenerator.get_train_val_generator(X, Y, 0.25, batch_size)


class Model(ClassificationModel):
    def init_model(self):
        network = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
        super().init_model(network, optim.Adam(network.parameters(), lr=self.config['lr']))


def get_config():
    return {'lr': 1e30}
"""


def test_a_diverging_trial_is_reported_once_without_numpy_warnings(tmp_path):
    """lr 1e30 sends the logits to infinity: the trial is marked diverged in one line, and
    numpy's RuntimeWarnings about inf - inf in its metrics never reach stderr."""
    from conftest import run_cli, write_def
    path = write_def(tmp_path, DIVERGING_DEF)
    done = run_cli('-f', path, '-d', tmp_path, '-r', tmp_path / 'r', '-y', '-c', '-ep', 1,
                   '--trials', 2, '--threads', 1, '--seed', 0)  # one batch an epoch
    assert done.returncode == 1 and 'every trial failed' in done.stderr
    assert 'Warning' not in done.stderr, done.stderr
    assert [line for line in done.stderr.splitlines() if 'diverged (loss' in line] == \
        [f'trial t000{i} diverged (loss or reward not finite)' for i in range(2)]
