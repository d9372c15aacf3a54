"""The search on a Ray cluster: a head and a second node on this machine, CPU only.

One cluster serves every test (it takes seconds to start). A trial logs each epoch it trains to
the file ``$EPOCH_LOG`` with its process and Ray node, so the tests see where trials ran, and
``$KILL_AT`` makes the worker that trains the cluster's KILL_AT-th epoch kill itself (SIGKILL).
"""
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

import ray  # the [test] extra installs it

from conftest import ROOT, write_def  # noqa: E402
from dlutil.definition import Definition  # noqa: E402
from dlutil.search import results  # noqa: E402
from dlutil.search.executors import Job  # noqa: E402
from dlutil.search.hyperband import HyperbandSearch  # noqa: E402
from dlutil.search.ray_executor import RayExecutor  # noqa: E402
from test_resume_parallel import comparable, epochs_done  # noqa: E402

TINY_DEF = '''
import os
import signal

import numpy as np
import torch
from torch import nn, optim

from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator


def get_train_generator(data_dir, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 5)).astype(np.float32)
    Y = (X @ np.arange(5) + rng.normal(size=96)).astype(np.float32)
    return MatrixBatchGenerator.get_train_val_generator(X, Y, 0.25, batch_size)


class Model(RegressionModel):
    def init_model(self):
        network = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 1))
        super().init_model(network, optim.SGD(network.parameters(), lr=self.config['lr']))

    def run_epoch(self, *args, **kwargs):
        log = os.environ.get('EPOCH_LOG')
        if log:
            import ray
            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else '-'
            with open(log, 'a') as handle:
                handle.write(f'{os.getpid()} {node}\\n')
            kill_at = int(os.environ.get('KILL_AT') or 0)
            with open(log) as handle:
                count = len(handle.readlines())
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # a node dying mid-epoch
        return super().run_epoch(*args, **kwargs)


def get_config():
    return {'lr': float(np.random.choice([0.003, 0.01, 0.03]))}
'''

R, SEED, BATCH = 3, 5, 16


@pytest.fixture(scope='module')
def cluster():
    """A head node and a second node process, one CPU each, stopped at the end."""
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True,
                      head_node_args={'num_cpus': 1, 'include_dashboard': False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def search(def_path, result, **kwargs):
    definition = Definition.load(str(def_path), hyper=True)
    store = results.ResultStore(str(result))
    HyperbandSearch(definition, store, R, 3, SEED, BATCH, str(result), 'cpu', threads=1,
                    trials=7, report_every=1e9, **kwargs).run()
    return comparable(result)


def checkpoint_files(result):
    """``{trial/name: (epoch, weights alone?, digest of the weights, hard-linked?)}`` of every
    checkpoint: what --keep-checkpoints leaves, down to the bytes of the weights."""
    out = {}
    for trial in sorted(os.listdir(result / 'trials')):
        for name in sorted(n for n in os.listdir(result / 'trials' / trial) if n.endswith('.pt')):
            path = result / 'trials' / trial / name
            state = results.load_checkpoint(path)
            weights = b''.join(t.numpy().tobytes() for t in state['model']['network'].values())
            out[f'{trial}/{name}'] = (state['epoch'], bool(state.get('weights_only')),
                                      hashlib.sha256(weights).hexdigest(),
                                      os.stat(path).st_nlink > 1)
    return out


@pytest.fixture(scope='module')
def local(tmp_path_factory):
    """The search run in this process without Ray, under --keep-checkpoints best and all:
    ``{policy: (comparable results, checkpoint files)}``, what every Ray run must reproduce."""
    tmp = tmp_path_factory.mktemp('local')
    def_path = write_def(tmp, TINY_DEF)
    os.environ.pop('EPOCH_LOG', None)
    os.environ.pop('KILL_AT', None)
    out = {}
    for policy in ('best', 'all'):
        out[policy] = (search(def_path, tmp / policy, keep_checkpoints=policy),
                       checkpoint_files(tmp / policy))
    assert out['best'][0] == out['all'][0]
    assert 'last.pt' not in ''.join(out['best'][1]) and any(
        key.endswith('last.pt') for key in out['all'][1])
    return out


@pytest.fixture(scope='module')
def local_result(local):
    return local['best'][0]


def epoch_log(path):
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def trained_epochs(out):
    return sum(len(v) for k, v in out.items() if k.startswith('t') and '/' not in k)


def test_a_search_on_two_nodes_gives_the_local_results_and_checkpoints(cluster, local, tmp_path,
                                                                       monkeypatch):
    def_path = write_def(tmp_path, TINY_DEF)
    monkeypatch.setenv('EPOCH_LOG', str(tmp_path / 'epochs.log'))
    out = search(def_path, tmp_path / 'result', ray=cluster.address)  # --keep-checkpoints best
    assert out == local['best'][0]
    nodes = {node for _, node in epoch_log(tmp_path / 'epochs.log')}
    assert len(nodes) == 2, 'the trials should have run on both nodes'
    # the policy trimmed what the local search trims: best.pt of every trial, weights alone
    assert checkpoint_files(tmp_path / 'result') == local['best'][1]


def test_tasks_carry_no_path_into_the_results_directory(cluster, tmp_path):
    """Nodes need not share a filesystem: no task argument names --result; a sink actor on the
    driver's node writes it."""
    def_path = write_def(tmp_path, TINY_DEF)
    store = results.ResultStore(str(tmp_path / 'somewhere'))
    definition = Definition.load(str(def_path), hyper=True)
    executor = RayExecutor(definition, str(tmp_path), BATCH, store, threads=1, device='cpu')
    assert executor.workers == 2
    job = Job(0, 't0000', {'lr': 0.01}, 123, 2)
    assert str(tmp_path / 'somewhere').encode() not in pickle.dumps((executor.args, job))
    sink_node = ray.get(executor.sink.__ray_call__.remote(
        lambda sink: ray.get_runtime_context().get_node_id()))
    assert sink_node == ray.get_runtime_context().get_node_id()
    # the def.py travels as text: a node without the file loads the copy
    source, _, *rest = executor.args
    outcome = ray.get(executor.task.remote(source, str(tmp_path / 'elsewhere' / 'def.py'), *rest,
                                           job, 1, executor.sink))
    assert outcome['status'] == 'ok'
    last = results.load_checkpoint(store.trial_file('t0000', 'last.pt'))
    assert last['epoch'] == 2 and len(store.read_history('t0000')) == 2
    # once closed (Ctrl-C on the driver), the sink writes nothing more
    assert ray.get(executor.sink.close.remote())
    with pytest.raises(ray.exceptions.RayTaskError, match='interrupted'):
        ray.get(executor.sink.put.remote('t0000', {'history.csv': b'epoch\n'}))
    assert len(store.read_history('t0000')) == 2
    ray.kill(executor.sink)


def test_a_worker_killed_mid_trial_resumes_from_its_last_epoch(cluster, local_result, tmp_path,
                                                               monkeypatch):
    def_path = write_def(tmp_path, TINY_DEF)
    log = tmp_path / 'epochs.log'
    monkeypatch.setenv('EPOCH_LOG', str(log))
    monkeypatch.setenv('KILL_AT', '6')
    out = search(def_path, tmp_path / 'result', ray=cluster.address)
    assert out == local_result
    lines = epoch_log(log)
    # the killed epoch is the only one trained twice: the retry resumed from the last checkpoint
    assert len(lines) == trained_epochs(out) + 1
    assert lines[5][0] not in {pid for pid, _ in lines[6:]}


def command(def_path, data, result, *extra):
    return [sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(def_path), '-d', str(data),
            '-r', str(result), '-y', '-ep', str(R), '-bs', str(BATCH), '--seed', str(SEED),
            '--trials', '7', '-c', '--threads', '1', *extra]


def start_and_stop(args, result, sig, env, epochs=5):
    """Start the command, send it ``sig`` once ``epochs`` epochs are in ``result``; returns the
    finished process and its stderr."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.monotonic() + 120
    while process.poll() is None and epochs_done(result) < epochs and time.monotonic() < deadline:
        time.sleep(0.02)  # polls the results directory; the search runs meanwhile
    assert process.poll() is None, 'the search ended before it could be stopped'
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    return process, err


def test_a_killed_driver_continues_when_run_again(cluster, local, tmp_path):
    """SIGKILL: no chance to clean up; the results directory lies inside --data (-d . -r res)."""
    def_path = write_def(tmp_path, TINY_DEF)
    result = tmp_path / 'result'
    env = {k: v for k, v in os.environ.items() if k not in ('EPOCH_LOG', 'KILL_AT')}
    args = command(def_path, tmp_path, result, '--ray', cluster.address,
                   '--keep-checkpoints', 'all')
    start_and_stop(args, result, signal.SIGKILL, env)
    done = epochs_done(result)
    again = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert comparable(result) == local['all'][0]
    assert checkpoint_files(result) == local['all'][1]
    assert 0 < done < trained_epochs(local['all'][0])
    assert json.loads((result / 'search.json').read_text())['seed'] == SEED


def alive(pid):
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_ctrl_c_stops_the_clusters_tasks_and_running_again_finishes(cluster, local, tmp_path):
    def_path = write_def(tmp_path, TINY_DEF)
    result, log = tmp_path / 'result', tmp_path / 'epochs.log'
    env = {**{k: v for k, v in os.environ.items() if k != 'KILL_AT'}, 'EPOCH_LOG': str(log)}
    args = command(def_path, tmp_path / 'data', result, '--ray', cluster.address)
    (tmp_path / 'data').mkdir()
    process, err = start_and_stop(args, result, signal.SIGINT, env)
    assert process.returncode == 130, err
    assert 'interrupted: re-run the same command to continue' in err
    assert 'Traceback' not in err
    # when the command has returned, the tasks that trained for it are gone
    interrupted = epoch_log(log)
    assert interrupted and not [pid for pid, _ in interrupted if alive(pid)]
    done = epochs_done(result)
    assert 0 < done < trained_epochs(local['best'][0])

    again = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    old = {pid for pid, _ in interrupted}
    assert [line for line in epoch_log(log) if line[0] in old] == interrupted, \
        'a task of the interrupted run trained on'
    assert comparable(result) == local['best'][0]
    assert checkpoint_files(result) == local['best'][1]
    # the second run trained what the first had not finished (and the epochs cut short)
    rerun = len(epoch_log(log)) - len(interrupted)
    assert trained_epochs(local['best'][0]) - done <= rerun < trained_epochs(local['best'][0])


def test_without_ray_the_flag_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    from dlutil import cli
    monkeypatch.setitem(sys.modules, 'ray', None)  # as if it were not installed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['-f', str(tmp_path / 'def.py'), '-d', str(tmp_path), '-r', str(tmp_path / 'r'),
                  '-y', '--ray'])
    assert exit_info.value.code == 2
    assert "--ray needs Ray: pip install 'dlutil[ray]'" in capsys.readouterr().err
