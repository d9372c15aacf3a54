"""The search on a Ray cluster: a head and a second node on this machine, CPU only.

One cluster serves every test (it takes seconds to start). A trial logs each epoch it trains to
the file ``$EPOCH_LOG`` with its process and Ray node, so the tests see where trials ran, and
``$KILL_AT`` makes the worker that trains the cluster's KILL_AT-th epoch kill itself (SIGKILL).
"""
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


@pytest.fixture(scope='module')
def local_result(tmp_path_factory):
    """The same search run in this process, without Ray: what every Ray run must reproduce."""
    tmp = tmp_path_factory.mktemp('local')
    def_path = write_def(tmp, TINY_DEF)
    os.environ.pop('EPOCH_LOG', None)
    os.environ.pop('KILL_AT', None)
    return search(def_path, tmp / 'result')


def epoch_log(path):
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.xfail(reason='issue 13, open: after the merge with --keep-checkpoints (issue 12) a Ray search '
                          'leaves no last.pt for trials the local search keeps', strict=False)
def test_a_search_on_two_nodes_gives_the_local_results(cluster, local_result, tmp_path,
                                                      monkeypatch):
    def_path = write_def(tmp_path, TINY_DEF)
    monkeypatch.setenv('EPOCH_LOG', str(tmp_path / 'epochs.log'))
    out = search(def_path, tmp_path / 'result', ray=cluster.address)
    assert out == local_result
    nodes = {node for _, node in epoch_log(tmp_path / 'epochs.log')}
    assert len(nodes) == 2, 'the trials should have run on both nodes'
    # every epoch's checkpoint reached the driver's results directory
    for trial in os.listdir(tmp_path / 'result' / 'trials'):
        last = results.load_checkpoint(tmp_path / 'result' / 'trials' / trial / 'last.pt')
        assert last['epoch'] == len(out[trial])


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


def test_a_worker_killed_mid_trial_resumes_from_its_last_epoch(cluster, local_result, tmp_path,
                                                               monkeypatch):
    def_path = write_def(tmp_path, TINY_DEF)
    log = tmp_path / 'epochs.log'
    monkeypatch.setenv('EPOCH_LOG', str(log))
    monkeypatch.setenv('KILL_AT', '6')
    out = search(def_path, tmp_path / 'result', ray=cluster.address)
    assert out == local_result
    lines = epoch_log(log)
    trained = sum(len(v) for k, v in out.items() if '/' not in k and k.startswith('t'))
    # the killed epoch is the only one trained twice: the retry resumed from the last checkpoint
    assert len(lines) == trained + 1
    assert lines[5][0] not in {pid for pid, _ in lines[6:]}


def command(def_path, data, result, *extra):
    return [sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(def_path), '-d', str(data),
            '-r', str(result), '-y', '--keep-checkpoints', 'all', '-ep', str(R), '-bs', str(BATCH), '--seed', str(SEED),
            '--trials', '7', '-c', '--threads', '1', *extra]


@pytest.mark.xfail(reason='issue 13, open: after the merge with --keep-checkpoints (issue 12) a Ray search '
                          'leaves no last.pt for trials the local search keeps', strict=False)
def test_a_killed_driver_continues_when_run_again(cluster, local_result, tmp_path):
    def_path = write_def(tmp_path, TINY_DEF)
    result = tmp_path / 'result'
    env = {k: v for k, v in os.environ.items() if k not in ('EPOCH_LOG', 'KILL_AT')}
    process = subprocess.Popen(command(def_path, tmp_path, result, '--ray', cluster.address),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while process.poll() is None and epochs_done(result) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, 'the search ended before it could be killed'
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = epochs_done(result)
    again = subprocess.run(command(def_path, tmp_path, result, '--ray', cluster.address),
                           capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert comparable(result) == local_result
    assert 0 < done < sum(len(v) for k, v in local_result.items() if k.startswith('t')
                          and '/' not in k)
    assert json.loads((result / 'search.json').read_text())['seed'] == SEED


def test_without_ray_the_flag_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    from dlutil import cli
    monkeypatch.setitem(sys.modules, 'ray', None)  # as if it were not installed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['-f', str(tmp_path / 'def.py'), '-d', str(tmp_path), '-r', str(tmp_path / 'r'),
                  '-y', '--ray'])
    assert exit_info.value.code == 2
    assert "--ray needs Ray: pip install 'dlutil[ray]'" in capsys.readouterr().err
