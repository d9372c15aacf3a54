"""Live feedback of a search, from the user's command line: one line per finished epoch (from
worker processes too), the report's path, a report that reloads itself while the search runs and
not after, TensorBoard runs, the running loss on the progress bar, and Ctrl-C through ``| tee``."""
import csv
import glob
import io
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from tqdm import tqdm

from conftest import CLASSIFIER_DEF, ROOT, default_sigint
from dlutil import extras

# the classifier of conftest, with two test hooks: LIVE_SEEN (the first epoch in each process
# waits for report.html and keeps a copy: the page of a running search) and LIVE_BLOCK (the
# process's second epoch never ends, until Ctrl-C)
LIVE_DEF = CLASSIFIER_DEF + '''
import shutil
import time

_run_epoch = Model.run_epoch
_waited, _epochs = [], []


def run_epoch(self, *args, **kwargs):
    seen, page = os.environ.get('LIVE_SEEN'), os.environ.get('LIVE_REPORT')
    if seen and not _waited:
        deadline = time.monotonic() + 120
        while not os.path.exists(page) and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.copyfile(page, os.path.join(seen, f'{os.getpid()}.html'))
        _waited.append(True)
    _epochs.append(True)
    if os.environ.get('LIVE_BLOCK') and len(_epochs) == 2:
        print('blocked', flush=True)
        while True:
            time.sleep(0.02)
    return _run_epoch(self, *args, **kwargs)


Model.run_epoch = run_epoch
'''


RELOADS = 'location.reload()'


def histories(result):
    """{trial: [history rows]} of a results directory."""
    out = {}
    for path in sorted(glob.glob(os.path.join(result, 'trials', '*', 'history.csv'))):
        with open(path, newline='') as handle:
            out[os.path.basename(os.path.dirname(path))] = list(csv.DictReader(handle))
    return out


def command(tmp_path, data, result, *flags):
    definition = tmp_path / 'def.py'
    definition.write_text(LIVE_DEF)
    return [sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(definition), '-d',
            str(data), '-r', str(result), '-y', '--epoch', '3', '--batch-size', '32', *flags]


def test_a_search_shows_every_epoch_once_its_report_and_tensorboard_runs(tmp_path, h5_data):
    result, seen = tmp_path / 'result', tmp_path / 'seen'
    seen.mkdir()
    page = result / 'report.html'
    env = dict(os.environ, LIVE_SEEN=str(seen), LIVE_REPORT=str(page))
    # two worker processes; the output piped, as with | tee
    run = subprocess.run(command(tmp_path, h5_data, result, '--workers', '2', '--tensorboard'),
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert '\r' not in out and 'Logging error' not in out  # no bars, no torn lines in a pipe

    # one line per finished epoch, each once, with the numbers history.csv holds
    rows = histories(result)
    assert len(rows) == 5 and sum(map(len, rows.values())) == 11  # R=3, eta=3
    for trial, history in rows.items():
        for row in history:
            pattern = (rf'^trial {trial} epoch {row["epoch"]}/[13]: '
                       rf'train_loss {float(row["train_loss"]):.4g}, '
                       rf'val_loss {float(row["val_loss"]):.4g}, '
                       rf'reward {float(row["hyperband_reward"]):.4g} \([\d.e+-]+ s\)$')
            assert len(re.findall(pattern, out, re.M)) == 1, (pattern, out)

    # the report's path as the search starts (the page then reloads itself) and as it ends
    lines = out.splitlines()
    start = lines.index(f'report: {page} (it reloads itself while the search runs)')
    assert start < min(i for i, line in enumerate(lines) if line.startswith('trial '))
    assert f'report: {page}' in lines[start + 1:]
    pages = [p.read_text() for p in seen.iterdir()]
    assert pages and all(RELOADS in p and 'The search is running' in p for p in pages)
    final = page.read_text()
    assert RELOADS not in final and 'The search is running' not in final
    assert 'Best trial: t0' in final

    # TensorBoard: a run per trial with every epoch's scalars and the configuration
    assert f'TensorBoard: tensorboard --logdir {result}' in lines
    for trial, history in rows.items():
        scalars, config = read_run(result / 'tensorboard' / trial)
        for column, tag in (('train_loss', 'loss/train'), ('val_loss', 'loss/validation'),
                            ('val_auroc', 'auroc/validation'),
                            ('hyperband_reward', 'hyperband_reward')):
            steps, values = zip(*scalars[tag])
            assert list(steps) == [int(r['epoch']) for r in history]
            np.testing.assert_allclose(values, [float(r[column]) for r in history], rtol=1e-6)
        with open(result / 'trials' / trial / 'config.json') as handle:
            assert config == pytest.approx(json.load(handle))


def read_run(folder):
    """``({tag: [(step, value)]}, hparams)`` of a TensorBoard run, read by TensorBoard itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    run = EventAccumulator(str(folder))
    run.Reload()
    scalars = {tag: [(e.step, e.value) for e in run.Scalars(tag)]
               for tag in run.Tags()['scalars']}
    start = run.PluginTagToContent('hparams')['_hparams_/session_start_info']
    values = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    config = {name: value.number_value if value.HasField('number_value') else value.string_value
              for name, value in values.items()}
    return scalars, config


def test_tensorboard_turned_on_later_writes_every_trial(tmp_path, h5_data, cli,
                                                        classifier_def):
    result = tmp_path / 'result'
    args = ['-f', classifier_def, '-d', h5_data, '-r', result, '-y', '--epoch', '1',
            '--batch-size', '32']
    assert cli(*args)[0] == 0
    assert not (result / 'tensorboard').exists()
    code, err = cli(*args, '--tensorboard')  # the finished search, replayed
    assert code == 0, err
    rows = histories(result)
    for trial, history in rows.items():
        scalars, _ = read_run(result / 'tensorboard' / trial)
        assert [s for s, _ in scalars['hyperband_reward']] == [int(r['epoch']) for r in history]


def test_tensorboard_missing_names_the_extra(tmp_path, cli, capsys, monkeypatch,
                                            classifier_def):
    real = extras.importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'tensorboard' else real(name, *a))
    with pytest.raises(SystemExit) as exit:
        cli('-f', classifier_def, '-d', tmp_path, '-r', tmp_path / 'r', '-y', '--tensorboard')
    assert exit.value.code == 2
    assert ("--tensorboard needs the package tensorboard: pip install 'dlutil[tensorboard]'"
            in capsys.readouterr().err)


def test_the_progress_bar_shows_the_running_loss(classifier_def):
    from batch_generator import MatrixBatchGenerator
    from conftest import onehot_motif_data
    from dlutil.definition import Definition
    model = Definition.load(str(classifier_def)).Model({'filters': 4, 'lr': 0.01}, device='cpu')
    X, y = onehot_motif_data(16)
    bar = tqdm(total=1, file=io.StringIO(), disable=False)
    loss = model.train_epoch(MatrixBatchGenerator(X, y, 16), bar)['loss']  # one batch
    assert bar.postfix == f'loss={loss:.4g}'


def test_ctrl_c_through_tee_stops_the_search(tmp_path, h5_data):
    """``python main.py … 2>&1 | tee log`` and Ctrl-C: both get SIGINT, tee ends first."""
    result = tmp_path / 'result'
    # both as a terminal's foreground job has them: SIGINT not ignored, even where the tests
    # run in the background (a shell's `cmd &` ignores SIGINT, and its children inherit that)
    search = subprocess.Popen(command(tmp_path, h5_data, result), cwd=ROOT,
                              env=dict(os.environ, LIVE_BLOCK='1'),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              process_group=0, preexec_fn=default_sigint)
    # one process group, as a shell makes for a pipeline: the terminal signals both
    tee = subprocess.Popen(['tee', str(tmp_path / 'log')], stdin=search.stdout,
                           stdout=subprocess.PIPE, text=True, process_group=search.pid,
                           preexec_fn=default_sigint)
    search.stdout.close()
    try:
        for line in tee.stdout:  # the second epoch never ends
            if line == 'blocked\n':
                break
        os.killpg(search.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert search.wait(timeout=120) == 130
    finally:
        for process in (search, tee):
            if process.poll() is None:
                process.kill()
        tee.stdout.close()
    # the page stopped reloading with the search
    assert RELOADS not in (result / 'report.html').read_text()
    # the first epoch, kept for the next run, and shown
    rows = histories(result)
    assert len(rows['t0000']) == 1 and sum(map(len, rows.values())) == 1
    with open(tmp_path / 'log') as handle:
        assert re.search(r'^trial t0000 epoch 1/1: ', handle.read(), re.M)
