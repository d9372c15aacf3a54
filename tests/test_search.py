"""The search end to end through the CLI: results layout, resume, failures, determinism."""
import json
import os

import numpy as np
import torch

from dlutil.search import schedule as hyperband
from dlutil.search import results
from conftest import CLASSIFIER_DEF, write_def


def read_rows(result):
    return results.read_csv(os.path.join(result, 'search.csv'))


def test_search_eval_predict_writes_the_documented_results(cli, classifier_def, h5_data,
                                                            tmp_path):
    result = tmp_path / 'res'
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-e',
                    '-p', 'test_pred*.h5', '-ep', 9, '-bs', 32, '--seed', 0, '-c',
                    '--keep-checkpoints', 'all')
    assert code == 0, err
    configs, evaluations, resumed, _ = hyperband.totals(9, 3)
    rows = read_rows(result)
    assert len(rows) == evaluations
    assert list(rows[0]) == ['trial', 'bracket', 'rung', 'epochs', 'reward', 'status',
                             'def_version']
    trials = sorted(os.listdir(result / 'trials'))
    assert len(trials) == configs and all(len(t) <= 6 for t in trials)

    # promoted trials continue from their checkpoint: every epoch trained once, in order
    trained = 0
    for trial in trials:
        history = results.read_csv(result / 'trials' / trial / 'history.csv')
        assert [r['epoch'] for r in history] == list(range(1, len(history) + 1))
        assert max(r['epochs'] for r in rows if r['trial'] == trial) == len(history)
        trained += len(history)
        for row in history:
            assert {'train_seconds', 'train_loss', 'train_accuracy', 'val_loss', 'val_auroc',
                    'hyperband_reward'} <= set(row)
            assert row['hyperband_reward'] == -row['val_loss']
        checkpoint = torch.load(result / 'trials' / trial / 'last.pt', weights_only=True)
        assert checkpoint['epoch'] == len(history)
        assert {'network', 'optimizer'} <= set(checkpoint['model']) and 'rng' in checkpoint
        best = torch.load(result / 'trials' / trial / 'best.pt', weights_only=True)
        top = max(history, key=lambda r: r['hyperband_reward'])
        assert best['epoch'] == top['epoch']
        assert sorted(os.listdir(result / 'trials' / trial)) == [
            'best.pt', 'config.json', 'history.csv', 'last.pt']
    assert trained == resumed

    # one statistic: a rung evaluation's reward is the best reward of its first epochs
    for row in rows:
        history = results.read_csv(result / 'trials' / row['trial'] / 'history.csv')
        assert row['reward'] == max(r['hyperband_reward'] for r in history[:row['epochs']])

    # ... the best trial has the highest, and best.json names the epoch best.pt holds
    best = json.loads((result / 'best.json').read_text())
    top = max(rows, key=lambda r: r['reward'])
    assert best['trial'] == top['trial'] and best['rung_reward'] == top['reward']
    assert best['reward'] == top['reward']
    assert torch.load(result / 'trials' / best['trial'] / 'best.pt',
                      weights_only=True)['epoch'] == best['epoch']
    assert best['config'] == json.loads(
        (result / 'trials' / best['trial'] / 'config.json').read_text())
    test = json.loads((result / 'test_result.json').read_text())
    assert set(test) == {'loss', 'accuracy', 'auroc'} and test['auroc'] > 0.8
    assert np.load(result / 'predictions' / 'test_pred_a.h5.npy').shape == (30, 2)
    assert np.load(result / 'predictions' / 'test_pred_b.h5.npy').shape == (10, 2)

    # a finished search is reported, not rerun
    before = (result / 'search.csv').read_text()
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-ep', 9, '-bs',
                    32, '-c')
    assert code == 0 and f'best: trial {best["trial"]}' in err
    assert (result / 'search.csv').read_text() == before


def test_same_seed_same_search(cli, classifier_def, h5_data, tmp_path):
    outputs = []
    for name in ('a', 'b'):
        code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / name, '-y',
                        '-ep', 3, '-bs', 32, '--seed', 5, '-c')
        assert code == 0, err
        outputs.append((tmp_path / name / 'search.csv').read_text())
    assert outputs[0] == outputs[1]
    code, _ = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'c', '-y', '-ep', 3,
                  '-bs', 32, '--seed', 6, '-c')
    configs = lambda name: [json.loads((tmp_path / name / 'trials' / t / 'config.json')
                                       .read_text()) for t in ('t0000', 't0001', 't0002')]
    assert configs('a') == configs('b') and configs('a') != configs('c')


def test_interrupted_search_resumes_to_the_same_result(cli, classifier_def, h5_data, tmp_path,
                                                       monkeypatch):
    args = ['-f', classifier_def, '-d', h5_data, '-y', '-ep', 9, '-bs', 32, '--seed', 3, '-c']
    code, err = cli('-r', tmp_path / 'full', *args)
    assert code == 0, err

    import base_model
    calls = {'n': 0}
    original = base_model.BaseModel.run_epoch

    def crash_after_20_epochs(self, *a, **k):
        calls['n'] += 1
        if calls['n'] > 20:
            raise KeyboardInterrupt
        return original(self, *a, **k)
    monkeypatch.setattr(base_model.BaseModel, 'run_epoch', crash_after_20_epochs)
    code, err = cli('-r', tmp_path / 'cut', *args)
    assert code == 130 and 're-run the same command' in err
    monkeypatch.setattr(base_model.BaseModel, 'run_epoch', original)
    code, err = cli('-r', tmp_path / 'cut', *args)
    assert code == 0, err
    assert (tmp_path / 'cut' / 'search.csv').read_text() == \
        (tmp_path / 'full' / 'search.csv').read_text()
    for trial in os.listdir(tmp_path / 'full' / 'trials'):
        full = results.read_csv(tmp_path / 'full' / 'trials' / trial / 'history.csv')
        cut = results.read_csv(tmp_path / 'cut' / 'trials' / trial / 'history.csv')
        drop = lambda rows: [{k: v for k, v in r.items() if k != 'train_seconds'} for r in rows]
        assert drop(cut) == drop(full), trial


FAILING_DEF = CLASSIFIER_DEF.replace(
    "def get_config():\n    return {",
    "def get_config():\n    return {'mode': random.choice(['ok', 'ok', 'nan', 'raise']), ",
).replace(
    "        super(Model, self).init_model(network, optimizer, constraints=constraints)",
    """        if config['mode'] == 'raise':
            raise RuntimeError('this configuration is broken')
        if config['mode'] == 'nan':
            network.classifier.append(Scale(float('nan')))
        super(Model, self).init_model(network, optimizer, constraints=constraints)


class Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor""")


def test_failed_trials_are_recorded_and_never_best(cli, h5_data, tmp_path):
    path = write_def(tmp_path, FAILING_DEF)
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-e', '-ep', 9,
                    '-bs', 32, '--seed', 1, '-c')
    assert code == 0, err
    rows = read_rows(tmp_path / 'res')
    config = lambda t: json.loads((tmp_path / 'res' / 'trials' / t / 'config.json').read_text())
    statuses = {config(r['trial'])['mode']: set() for r in rows}
    for row in rows:
        statuses[config(row['trial'])['mode']].add(row['status'])
    assert statuses == {'ok': {'ok'}, 'nan': {'diverged'}, 'raise': {'error'}}
    failed = {r['trial'] for r in rows if r['status'] != 'ok'}
    assert all(r['reward'] is None for r in rows if r['status'] != 'ok')
    assert all(r['rung'] == 0 for r in rows if r['trial'] in failed)  # never promoted
    assert json.loads((tmp_path / 'res' / 'best.json').read_text())['trial'] not in failed
    error = (tmp_path / 'res' / 'trials' / sorted(
        r['trial'] for r in rows if r['status'] == 'error')[0] / 'error.txt').read_text()
    assert 'RuntimeError: this configuration is broken' in error
    assert 'trial' in err and 'failed: RuntimeError: this configuration is broken' in err


def test_every_trial_failing_is_an_error(cli, h5_data, tmp_path):
    path = write_def(tmp_path, FAILING_DEF.replace("random.choice(['ok', 'ok', 'nan', 'raise'])",
                                                   "'raise'"))
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-ep', 3, '-bs',
                    32, '-c')
    assert code == 1 and 'every trial failed' in err and 'error.txt' in err


def test_changed_flags_on_an_existing_search_are_reported(cli, classifier_def, h5_data,
                                                          tmp_path):
    args = ['-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-bs', 32, '-c']
    assert cli(*args, '-ep', 2, '--seed', 1)[0] == 0
    code, err = cli(*args, '-ep', 3)
    assert code == 1 and '--epoch 2 (now 3)' in err
    code, err = cli(*args, '-ep', 2, '--seed', 2)
    assert code == 1 and '--seed 1 (now 2)' in err


def test_environment_variables_the_def_reads_are_part_of_the_search(cli, h5_data, tmp_path,
                                                                    monkeypatch):
    path = write_def(tmp_path, CLASSIFIER_DEF.replace(
        "def get_config():", "FOLD = os.environ.get('MY_FOLD', '0')\n\n\ndef get_config():"))
    args = ['-f', path, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-ep', 1, '-bs', 32, '-c']
    monkeypatch.setenv('MY_FOLD', '1')
    assert cli(*args)[0] == 0
    saved = json.loads((tmp_path / 'res' / 'search.json').read_text())
    assert saved['environment'] == {'MY_FOLD': '1'}
    monkeypatch.setenv('MY_FOLD', '2')
    code, err = cli(*args)  # named; its value changes no result here, so the search goes on
    assert code == 0 and "MY_FOLD='1' (now '2')" in err and 'gave the same results' in err
    assert json.loads((tmp_path / 'res' / 'search.json').read_text())['environment'] == \
        {'MY_FOLD': '2'}


EARLY_STOPPING_DEF = '''
import numpy as np
import torch
from base_model import BaseModel
from batch_generator import MatrixBatchGenerator

CURVE = [0.1, 0.5, 0.3, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9]


def get_train_generator(data_dir, batch_size):
    one = MatrixBatchGenerator(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), 1)
    return one, one


def get_config():
    return {}


class Model(BaseModel):
    early_stopping_patience = 2

    def init_model(self):
        network = torch.nn.Linear(1, 1)
        super().init_model(network, lambda y, p: (p - y).pow(2).mean(),
                           torch.optim.SGD(network.parameters(), lr=0.0))

    def run_epoch(self, train_generator, val_generator, batch_size=None, progress=None):
        self.epoch = getattr(self, 'epoch', 0) + 1
        reward = CURVE[self.epoch - 1]
        return {'train_seconds': 0.0, 'train_loss': -reward, 'val_loss': -reward,
                'hyperband_reward': reward}

    def extra_state(self):
        return {'epoch': self.epoch}

    def load_extra_state(self, state):
        self.epoch = state['epoch']

    def train_metrics(self, y_true, y_pred):
        return {}

    def eval_metrics(self, y_true, y_pred):
        return {}

    def get_hyperband_reward(self, result):
        return result['hyperband_reward']
'''


def test_early_stopping_ends_a_trial_at_its_best_epoch(cli, tmp_path):
    path = write_def(tmp_path, EARLY_STOPPING_DEF)
    (tmp_path / 'data').mkdir()
    code, err = cli('-f', path, '-d', tmp_path / 'data', '-r', tmp_path / 'res', '-y', '-ep', 9,
                    '--eta', 3, '--trials', 1, '-c')
    assert code == 0, err
    rows = read_rows(tmp_path / 'res')
    # rungs of 1, 3 and 9 epochs: stopped after epoch 4 (two epochs without beating 0.5);
    # every rung reports the best reward so far, stopped or not
    assert [(r['epochs'], r['reward']) for r in rows] == [(1, 0.1), (3, 0.5), (9, 0.5)]
    history = results.read_csv(tmp_path / 'res' / 'trials' / 't0000' / 'history.csv')
    assert [r['epoch'] for r in history] == [1, 2, 3, 4]
    best = json.loads((tmp_path / 'res' / 'best.json').read_text())
    assert (best['epoch'], best['reward']) == (2, 0.5)
    assert torch.load(tmp_path / 'res' / 'trials' / 't0000' / 'best.pt',
                      weights_only=True)['epoch'] == 2
