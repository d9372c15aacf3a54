"""The search on a Ray cluster: a head and a second node on this machine, CPU only.

One cluster serves every test (it takes seconds to start). A trial logs each epoch it trains to
the file ``$EPOCH_LOG`` with its process and Ray node, so the tests see where trials ran, and
``$KILL_AT`` makes the worker that trains the cluster's KILL_AT-th epoch kill itself (SIGKILL);
while the file ``$HOLD`` exists, the cluster's N-th epoch (N: the file's text, default 3) and
every later one do not end, so the search stands still with a known number of epochs done (the
number is in the file, not in the environment, which is part of a search's identity).
"""
import concurrent.futures
import hashlib
import json
import logging
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import time

import pytest

import ray  # the [test] extra installs it

from conftest import ROOT, write_def  # noqa: E402
from dlutil.definition import Definition  # noqa: E402
from dlutil.search import checkpoints, results  # noqa: E402
from dlutil.search.executors import Job, make_executor  # noqa: E402
from dlutil.search.executors.ray import RayExecutor  # noqa: E402
from dlutil.search.hyperband import HyperbandSearch  # noqa: E402
from dlutil.search.settings import SearchSettings  # noqa: E402
from conftest import default_sigint  # noqa: E402
from test_resume_parallel import comparable, epochs_done  # noqa: E402

TINY_DEF = '''
import os
import signal
import time

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


def held_from(hold):
    """The first epoch of the cluster that the file ``hold`` holds (its text; empty: the third)."""
    try:
        with open(hold) as handle:
            return int(handle.read() or 3)
    except (FileNotFoundError, ValueError):  # let go of, or being written
        return float('inf')


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
            hold = os.environ.get('HOLD')
            while hold and os.path.exists(hold) and count >= held_from(hold):  # held epochs
                time.sleep(0.01)
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


def search(def_path, result, trials=7, **kwargs):
    definition = Definition.load(str(def_path), hyper=True)
    store = results.ResultStore(str(result))
    wanted = SearchSettings(max_epochs=R, eta=3, seed=SEED, batch_size=BATCH,
                            data_dir=str(result), device='cpu', threads=1, trials=trials,
                            **kwargs)
    keeper = checkpoints.CheckpointKeeper(store, wanted.keep_checkpoints)
    hyperband = HyperbandSearch(definition, store, wanted, watchers=[keeper])
    hyperband.run(make_executor(hyperband.settings, definition, store))
    return comparable(result)


class EpochLines(logging.Handler):
    """The epoch lines the ``dlutil`` logger shows in this process (the driver), while held."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        match = re.match(r'trial (t\d+) epoch (\d+)/\d+: ', record.getMessage())
        if match:
            self.lines.append((match[1], int(match[2])))

    def __enter__(self):
        logger = logging.getLogger('dlutil')
        self.level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        logging.getLogger('dlutil').removeHandler(self)
        logging.getLogger('dlutil').setLevel(self.level)


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


def trained(out):
    """``(trial, epoch)`` of every epoch in the trials' histories, sorted."""
    return sorted((trial, int(row['epoch'])) for trial, history in out.items()
                  if trial.startswith('t') and '/' not in trial for row in history)


def trained_epochs(out):
    return sum(len(v) for k, v in out.items() if k.startswith('t') and '/' not in k)


def test_a_search_on_two_nodes_gives_the_local_results_and_checkpoints(cluster, local, tmp_path,
                                                                       monkeypatch):
    def_path = write_def(tmp_path, TINY_DEF)
    monkeypatch.setenv('EPOCH_LOG', str(tmp_path / 'epochs.log'))
    with EpochLines() as shown:
        out = search(def_path, tmp_path / 'result', ray=cluster.address)  # --keep-checkpoints best
    assert out == local['best'][0]
    # every epoch trained on a node is shown by the driver, once
    assert sorted(shown.lines) == trained(out)
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
    assert executor.workers == 2  # one CPU per trial
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


def running_trials(log):
    """Processes of ``log`` that run a trial task now (Ray titles a worker by its task)."""
    out = set()
    for pid, _ in epoch_log(log):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as handle:
                if handle.read().startswith(b'ray::run_trial'):
                    out.add(pid)
        except OSError:  # gone
            pass
    return out


def start_and_stop(args, result, sig, env, hold, held_from):
    """Start the command with every epoch from the cluster's ``held_from``-th on held (the file
    ``hold``), send it ``sig`` once the epochs before are in ``result``, then let go of the
    hold; returns the finished process, its stderr and the trial tasks seen running.

    The search cannot get past the held epochs, so what it has done when the signal comes does
    not depend on how fast the machine is."""
    log = pathlib.Path(env['EPOCH_LOG'])
    done = epochs_done(result) + held_from - len(epoch_log(log)) - 1
    hold.write_text(str(held_from))
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, env={**env, 'HOLD': str(hold)},
                                   preexec_fn=default_sigint)
        deadline, seen = time.monotonic() + 120, set()
        while process.poll() is None and epochs_done(result) < done and \
                time.monotonic() < deadline:
            seen |= running_trials(log)
            time.sleep(0.02)  # polls the results directory; the search runs meanwhile
        if process.poll() is not None:
            raise AssertionError('the search ended before it could be stopped: '
                                 + process.communicate()[1])
        assert epochs_done(result) == done, 'the hold did not hold the search'
        seen |= running_trials(log)  # held: running
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
    finally:
        hold.unlink()
    return process, err, seen


def test_an_interrupted_search_has_stopped_its_tasks_when_it_returns(cluster, tmp_path,
                                                                   monkeypatch):
    """In a process that stays connected to the cluster (a notebook, or the CLI before it exits),
    Ctrl-C while a trial trains: when the search has raised, its task runs no more."""
    def_path = write_def(tmp_path, TINY_DEF)
    log, hold = tmp_path / 'epochs.log', tmp_path / 'hold'
    monkeypatch.setenv('EPOCH_LOG', str(log))
    monkeypatch.setenv('HOLD', str(hold))
    hold.touch()
    wait, held = concurrent.futures.wait, []

    def ctrl_c_once_held(futures, return_when):
        """The search waits for its tasks: Ctrl-C comes once the third epoch is under way."""
        while not held:
            done, _ = wait(futures, timeout=0.02, return_when=return_when)
            if done:
                return done, set(futures) - done
            held[:] = sorted(running_trials(log)) if len(epoch_log(log)) >= 3 else []
        raise KeyboardInterrupt
    monkeypatch.setattr(concurrent.futures, 'wait', ctrl_c_once_held)
    try:
        with pytest.raises(KeyboardInterrupt):
            search(def_path, tmp_path / 'result', ray=cluster.address)
        assert epoch_log(log)[2][0] in held  # the held epoch's task, and maybe others
        assert not running_trials(log) and ray.is_initialized()
    finally:
        hold.unlink()


def test_ctrl_c_and_a_killed_driver_each_continue_when_run_again(cluster, local, tmp_path):
    """Ctrl-C (SIGINT) stops the cluster's tasks for good; after SIGKILL (no chance to clean up)
    the search continues too; the results directory lies inside --data (-d . -r res)."""
    def_path = write_def(tmp_path, TINY_DEF)
    data, log = tmp_path / 'data', tmp_path / 'epochs.log'
    data.mkdir()
    result = data / 'res'
    env = {**{k: v for k, v in os.environ.items() if k != 'KILL_AT'}, 'EPOCH_LOG': str(log)}
    args = command(def_path, data, result, '--ray', cluster.address,
                   '--keep-checkpoints', 'all')
    total = trained_epochs(local['all'][0])

    hold = tmp_path / 'hold'
    env['HOLD'] = str(hold)  # the same in every run: the environment is part of the search
    # stopped with the cluster's first two epochs done
    process, err, seen = start_and_stop(args, result, signal.SIGINT, env, hold, 3)
    assert process.returncode == 130, err
    assert 'interrupted: re-run the same command to continue' in err and 'Traceback' not in err
    # when the command has returned, the tasks that trained for it are gone
    assert seen and not running_trials(log)
    interrupted = epoch_log(log)
    after_interrupt = epochs_done(result)
    assert 0 < after_interrupt < total

    # killed with two more epochs done
    start_and_stop(args, result, signal.SIGKILL, env, hold, len(epoch_log(log)) + 3)
    after_kill = epochs_done(result)
    assert after_interrupt < after_kill < total

    again = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    old = {pid for pid, _ in interrupted}
    assert [line for line in epoch_log(log) if line[0] in old] == interrupted, \
        'a task of the interrupted run trained on'
    assert comparable(result) == local['all'][0]
    assert checkpoint_files(result) == local['all'][1]
    # each run trained what the ones before had not finished (and the epochs cut short)
    assert total <= len(epoch_log(log)) < total + 6
    assert json.loads((result / 'search.json').read_text())['seed'] == SEED


def test_ddp_2_on_ray_runs_each_group_in_one_task_as_ddp_2_here(cluster, tmp_path, monkeypatch,
                                                                 request):
    """--ray --ddp 2: a task reserves 2 CPUs (only a third node, added here, has them) and runs
    the trial's gloo group; the search is the local --ddp 2 search, to float rounding."""
    def_path = write_def(tmp_path, TINY_DEF)
    definition = Definition.load(str(def_path), hyper=True)
    with pytest.raises(ValueError, match=r'a trial needs 2 CPUs on one node \(--threads 1 x '
                                         r'--ddp 2\).*the largest has 1 CPUs'):
        RayExecutor(definition, str(tmp_path), BATCH, results.ResultStore(str(tmp_path / 'x')),
                    threads=1, device='cpu', world=2)
    node = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    request.addfinalizer(lambda: cluster.remove_node(node))
    monkeypatch.setenv('EPOCH_LOG', str(tmp_path / 'here.log'))
    with EpochLines() as shown_here:
        here = search(def_path, tmp_path / 'here', trials=3, ddp=2)
    monkeypatch.setenv('EPOCH_LOG', str(tmp_path / 'ray.log'))
    with EpochLines() as shown_there:
        there = search(def_path, tmp_path / 'ray', trials=3, ddp=2, ray=cluster.address)
    # rank 0's epoch lines reach the driver, here and from a Ray task, once each
    assert sorted(shown_here.lines) == trained(here) and sorted(shown_there.lines) == \
        trained(there)
    # two processes trained every epoch
    assert len(epoch_log(tmp_path / 'ray.log')) == 2 * trained_epochs(there) > 0
    rows = [results.read_csv(tmp_path / name / 'search.csv') for name in ('here', 'ray')]
    assert [{k: v for k, v in r.items() if k != 'reward'} for r in rows[1]] == \
        [{k: v for k, v in r.items() if k != 'reward'} for r in rows[0]]
    assert [r['reward'] for r in rows[1]] == pytest.approx([r['reward'] for r in rows[0]],
                                                           rel=1e-6)
    assert there.keys() == here.keys()
    for key in here:
        if key.startswith('t') and '/' not in key:
            assert [r['val_loss'] for r in there[key]] == \
                pytest.approx([r['val_loss'] for r in here[key]], rel=1e-6)
    files = [checkpoint_files(tmp_path / name) for name in ('here', 'ray')]
    assert {k: v[:2] for k, v in files[1].items()} == {k: v[:2] for k, v in files[0].items()}
    # no node has 3 CPUs for --ddp 3: refused up front, not a task waiting for ever
    with pytest.raises(ValueError, match=r'a trial needs 3 CPUs on one node \(--threads 1 x '
                                         r'--ddp 3\).*the largest has 2 CPUs'):
        RayExecutor(definition, str(tmp_path), BATCH, results.ResultStore(str(tmp_path / 'x')),
                    threads=1, device='cpu', world=3)


def test_without_ray_the_flag_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    from dlutil import cli
    monkeypatch.setitem(sys.modules, 'ray', None)  # as if it were not installed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['-f', str(tmp_path / 'def.py'), '-d', str(tmp_path), '-r', str(tmp_path / 'r'),
                  '-y', '--ray'])
    assert exit_info.value.code == 2
    assert ("--ray needs the package ray: pip install 'dlutil[ray]' (in a checkout: pip install "
            "-e '.[ray]'), on the driver and on every node of the cluster"
            in capsys.readouterr().err)
