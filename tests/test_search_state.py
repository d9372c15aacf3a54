"""The search's own state: retries, derived files, identity, continuing and restarting, def.py
loading, file names and encodings (issue 9's search-state side and issue 12's continuation)."""
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dlutil.search import results
from conftest import ROOT, write_def

CURVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'curve_def.py')


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    """report.html is drawn with matplotlib: seconds per run that these tests do not look at."""
    from dlutil.search import report
    monkeypatch.setattr(report, 'write_report', lambda result_dir: None)


@pytest.fixture
def curve(tmp_path):
    """``(def.py, data directory)`` of the curve def."""
    data = tmp_path / 'data'
    data.mkdir()
    np.save(data / 'x.npy', np.ones((8, 1), np.float32))
    def_path = tmp_path / 'def.py'
    shutil.copy(CURVE, def_path)
    return def_path, data


def search(cli, def_path, data, result, *extra):
    return cli('-f', def_path, '-d', data, '-r', result, '-y', '-c', *extra)


def state(result):
    """What a search leaves that a user reads: rows, best trial, histories, configurations."""
    out = {'search.csv': (result / 'search.csv').read_text(),
           'best.json': json.loads((result / 'best.json').read_text())}
    for trial in sorted(os.listdir(result / 'trials')):
        # as text: NaN rewards compare equal (train_seconds is 0.0 in the curve def)
        out[trial] = (result / 'trials' / trial / 'history.csv').read_text().splitlines()
        out[trial + '/config'] = json.loads((result / 'trials' / trial / 'config.json')
                                            .read_text())
    return out


def rows(result):
    return results.read_csv(result / 'search.csv')


def moved_aside(result):
    return sorted(p for p in result.parent.iterdir() if p.name.startswith(result.name + '.'))


FLAGS = ('-ep', 9, '--seed', 3)


def test_error_rows_are_retried_and_diverged_rows_are_final(cli, curve, tmp_path):
    def_path, data = curve
    assert search(cli, def_path, data, tmp_path / 'full', *FLAGS)[0] == 0
    reference = state(tmp_path / 'full')
    statuses = {r['status'] for r in rows(tmp_path / 'full')}
    assert statuses == {'ok', 'diverged'}  # the seed gives both, and flaky ones pass

    (tmp_path / 'flaky').touch()  # a fault that goes away
    code, err = search(cli, def_path, data, tmp_path / 'cut', *FLAGS)
    assert code == 0, err
    failed = [r['trial'] for r in rows(tmp_path / 'cut') if r['status'] == 'error']
    assert failed and 'scratch disk is not mounted' in err
    assert all((tmp_path / 'cut' / 'trials' / t / 'error.txt').exists() for t in failed)

    (tmp_path / 'flaky').unlink()
    code, err = search(cli, def_path, data, tmp_path / 'cut', *FLAGS)
    assert code == 0, err
    # retried: the same rows and best trial as if it had never failed; trials promoted only
    # because it had failed keep the epochs they trained (a prefix is the uninterrupted run's)
    again = state(tmp_path / 'cut')
    for key, value in reference.items():
        if key.startswith('t') and not key.endswith('/config'):
            assert again[key][:len(value)] == value, key
        else:
            assert again[key] == value, key
    assert not any((tmp_path / 'cut' / 'trials' / t / 'error.txt').exists() for t in failed)
    assert 'diverged (loss' not in err  # diverged evaluations are final: replayed, not rerun


def test_best_json_is_derived_from_search_csv(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, *FLAGS)[0] == 0
    right = json.loads((result / 'best.json').read_text())
    ok = [r for r in rows(result) if r['status'] == 'ok']
    assert right['trial'] == max(ok, key=lambda r: r['reward'])['trial']
    other = next(r['trial'] for r in ok if r['trial'] != right['trial'])

    # a crash between the search.csv and best.json writes leaves best.json stale
    stale = dict(right, trial=other)
    (result / 'best.json').write_text(json.dumps(stale))
    code, err = cli('-f', def_path, '-d', data, '-r', result, '-e', '-c')
    assert code == 0, err
    assert f'using trial {right["trial"]}, epoch {right["epoch"]}' in err
    assert json.loads((result / 'best.json').read_text()) == right

    for broken in ('{"trial": ', None):  # corrupt, or missing: derived state, rebuilt
        if broken is None:
            (result / 'best.json').unlink()
        else:
            (result / 'best.json').write_text(broken)
        code, err = search(cli, def_path, data, result)
        assert code == 0, err
        assert json.loads((result / 'best.json').read_text()) == right


def test_corrupt_files_are_named(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    best = json.loads((result / 'best.json').read_text())

    (result / 'trials' / best['trial'] / 'best.pt').write_bytes(b'not a checkpoint')
    code, err = cli('-f', def_path, '-d', data, '-r', result, '-e', '-c')
    assert code == 1 and f'{result / "trials" / best["trial"] / "best.pt"} is corrupt' in err

    text = (result / 'search.csv').read_text()
    (result / 'search.csv').write_text(text + 't0001,oops\n')
    code, err = search(cli, def_path, data, result)
    assert code == 1 and f'{result / "search.csv"} is corrupt' in err
    (result / 'search.csv').write_text(text)

    (result / 'search.json').write_text('{"epoch": 3,')
    code, err = search(cli, def_path, data, result)
    assert code == 1 and f'{result / "search.json"} is corrupt' in err
    assert 'Traceback' not in err


def test_a_continued_search_takes_the_flags_it_was_made_with(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    made = ('-ep', 3, '--eta', 2, '-bs', 4, '--trials', 5, '--seed', 7)
    assert search(cli, def_path, data, result, *made)[0] == 0
    before = (result / 'search.csv').read_text()

    code, err = search(cli, def_path, data, result)
    assert code == 0, err
    lines = [line for line in err.splitlines() if 'search.json: using its' in line]
    assert len(lines) == 1
    for flag in ('--epoch 3', '--eta 2', '--batch-size 4', '--trials 5', '--seed 7'):
        assert flag in lines[0]
    assert (result / 'search.csv').read_text() == before

    code, err = search(cli, def_path, data, result, '-ep', 9)
    assert code == 1 and '--epoch 3 (now 9)' in err
    code, err = search(cli, def_path, data, result, '--eta', 2, '-bs', 8)
    assert code == 1 and '--batch-size 4 (now 8)' in err and '--eta' not in err.split(':', 2)[2]


def test_whitespace_and_comments_in_def_py_do_not_count(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    text = def_path.read_text()
    def_path.write_text('# my notes\n\n' + text.replace('\n\n\n', '\n\n\n\n# a comment\n')
                        .replace('def _load(path, batch_size):',
                                 'def _load(path,   batch_size):  # reformatted'))
    code, err = search(cli, def_path, data, result, '-ep', 3, '--seed', 3)
    assert code == 0, err
    assert not moved_aside(result)


def test_fix_and_rerun_after_every_trial_failed(cli, curve, tmp_path):
    def_path, data = curve
    text = def_path.read_text()
    def_path.write_text(text.replace("'mode': random.choice(['ok', 'ok', 'ok', 'nan', 'flaky'])",
                                     "'mode': 'flaky'"))
    (tmp_path / 'flaky').touch()
    result = tmp_path / 'res'
    code, err = search(cli, def_path, data, result, '-ep', 3, '--seed', 3)
    assert code == 1 and 'every trial failed' in err
    failed = (result / 'search.csv').read_text()

    def_path.write_text(text)  # the fix: nothing recorded depends on the old def.py
    code, err = search(cli, def_path, data, result, '-ep', 3, '--seed', 3)
    assert code == 0, err
    assert 'starting the search afresh' in err and 'get_config changed' in err
    [old] = moved_aside(result)
    assert (old / 'search.csv').read_text() == failed  # kept, not deleted
    assert 'ok' in {r['status'] for r in rows(result)}
    assert json.loads((result / 'search.json').read_text())['epoch'] == 3


def test_a_changed_search_with_results_is_refused_and_restart_moves_it_aside(cli, curve,
                                                                             tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    before = (result / 'search.csv').read_text()
    def_path.write_text(def_path.read_text().replace('0.05 *', '0.06 *'))
    code, err = search(cli, def_path, data, result, '-ep', 3, '--seed', 3)
    assert code == 1 and 'Model changed' in err and '--restart' in err
    assert (result / 'search.csv').read_text() == before and not moved_aside(result)

    code, err = search(cli, def_path, data, result, '--restart')
    assert code == 0, err
    [old] = moved_aside(result)
    assert (old / 'search.csv').read_text() == before
    assert sorted(os.listdir(old / 'trials')) == sorted(os.listdir(result / 'trials'))
    assert (result / 'search.csv').read_text() != before  # other rewards now
    with pytest.raises(SystemExit) as exit:
        cli('-f', def_path, '-d', data, '-r', result, '--restart', '-e')
    assert exit.value.code == 2


def test_the_data_is_part_of_the_identity(cli, curve, tmp_path):
    """By content: another path with the same files continues; a file the loaders read, changed,
    is refused by name, since the finished trials trained again on it differ."""
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    copy = tmp_path / 'copy'
    shutil.copytree(data, copy)
    code, err = search(cli, def_path, copy, result)
    assert code == 0 and f'--data is {copy} (the search was made with {data})' in err, err

    np.save(copy / 'x.npy', np.full((9, 1), 2, np.float32))
    np.save(copy / 'extra.npy', np.zeros(1))
    code, err = search(cli, def_path, copy, result)
    assert code == 1 and 'added extra.npy; modified x.npy' in err and 'leave out -y' in err

    # -e and -p evaluate the trained model on whatever data they are given, and say so
    code, err = cli('-f', def_path, '-d', copy, '-r', result, '-e', '-c')
    assert code == 0 and 'modified x.npy' in err


def test_eval_refuses_a_def_py_whose_model_changed(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    text = def_path.read_text()
    def_path.write_text(text.replace('return _load(os.path.join(data_dir, \'x.npy\'), 4)',
                                     'return _load(os.path.join(data_dir, \'x.npy\'), 2)'))
    code, err = cli('-f', def_path, '-d', data, '-r', result, '-e', '-c')
    assert code == 0 and 'get_test_generator' in err  # a loader: the same model, noted
    def_path.write_text(text.replace('torch.nn.Linear(1, 1)',
                                     'torch.nn.Linear(1, 1, bias=False)'))
    code, err = cli('-f', def_path, '-d', data, '-r', result, '-e', '-c')
    assert code == 1 and 'trained with another def.py' in err and 'Model changed' in err
    assert not (result / 'test_result.json').exists() or code == 1


def test_the_thread_count_is_recorded_and_a_continued_search_keeps_it(cli, curve, tmp_path,
                                                                      monkeypatch):
    """The default thread count depends on the load when the command starts: a search records
    the number it chose, continues with it, and treats another --threads as a change."""
    def_path, data = curve
    result = tmp_path / 'res'
    made = ('-ep', 3, '--trials', 4, '--seed', 7)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert search(cli, def_path, data, result, *made)[0] == 0
    assert json.loads((result / 'search.json').read_text())['threads'] == 1
    before = (result / 'search.csv').read_text()

    monkeypatch.setenv('OMP_NUM_THREADS', '2')  # the default would now be 2
    code, err = search(cli, def_path, data, result)
    assert code == 0, err
    assert '--threads 1' in next(line for line in err.splitlines() if 'using its' in line)
    assert 'torch CPU threads per trial: 2' not in err
    assert (result / 'search.csv').read_text() == before

    code, err = search(cli, def_path, data, result, '--threads', 2)
    assert code == 1 and '--threads 1 (now 2)' in err


def test_a_run_epoch_without_train_loss_stops_the_search_naming_it(cli, curve, tmp_path):
    """The contract asks run_epoch for train_loss: without it, one error naming the method and
    the key stops the search at the first epoch (not a "diverged" row for every trial)."""
    def_path, data = curve
    text = def_path.read_text()
    assert "'train_loss': -reward, " in text
    def_path.write_text(text.replace("'train_loss': -reward, ", ''))
    code, err = search(cli, def_path, data, tmp_path / 'res', '-ep', 3, '--seed', 1)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1
    assert 'Model.run_epoch returned a row without train_loss' in errors[0]
    assert str(def_path) in errors[0]
    assert 'diverged' not in err
    assert not (tmp_path / 'res' / 'search.csv').exists()


def test_a_nan_in_a_configuration_is_refused_by_name(cli, curve, tmp_path):
    def_path, data = curve
    text = def_path.read_text()
    def_path.write_text(text.replace("{'rate': round(random.random(), 4),",
                                     "{'rate': float('nan'),"))
    code, err = search(cli, def_path, data, tmp_path / 'res', '-ep', 3, '--seed', 1)
    assert code == 1
    assert "get_config() returned nan at ['rate']" in err
    assert not (tmp_path / 'res' / 'trials').exists()


def test_settings_are_written_only_once_the_run_is_validated(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    code, err = search(cli, def_path, data, result, '-ep', 3, '--sampler', 'tpe')
    assert code == 1 and 'needs a hyperopt search space' in err
    assert not (result / 'search.json').exists()
    code, err = search(cli, def_path, data, result, '-ep', 3)  # not refused
    assert code == 0, err


DATACLASS_DEF = '''
from __future__ import annotations

import csv
from dataclasses import dataclass

import metrics
from base_model import ClassificationModel


@dataclass
class Settings:
    width: int = 4
    note: str | None = None


def get_config():
    return {'width': Settings().width}


def get_test_generator(data_dir):
    return []


class Model(ClassificationModel):
    def init_model(self):
        pass
'''


def test_def_py_imports_as_a_module_and_never_shadows_ours(tmp_path, monkeypatch):
    from dlutil import definition
    folder = tmp_path / 'project'
    folder.mkdir()
    path = write_def(folder, DATACLASS_DEF)
    # a user's csv.py and metrics.py beside def.py: def.py may import its own metrics.py, but
    # the standard library's csv and the tool's modules stay what they are
    (folder / 'csv.py').write_text('raise ImportError("the user\'s csv.py was imported")\n')
    (folder / 'metrics.py').write_text('USER = True\n')
    monkeypatch.setattr(sys, 'path', list(sys.path))
    monkeypatch.delitem(sys.modules, 'metrics', raising=False)
    loaded = definition.Definition.load(str(path), eval=True)
    assert sys.path[-1] == str(folder)
    assert loaded.module.csv is __import__('csv') and loaded.module.metrics.USER
    assert sys.modules['user_def'] is loaded.module
    settings = loaded.module.Settings(8)
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_a_model_that_implements_nothing_is_refused_before_any_work(cli, curve, tmp_path):
    def_path, data = curve
    text = def_path.read_text()
    def_path.write_text(text[:text.index('class Model(')]
                        + 'from base_model import ClassificationModel\n\n\n'
                        + 'class Model(ClassificationModel):\n    pass\n')
    code, err = search(cli, def_path, data, tmp_path / 'res', '-ep', 3)
    assert code == 1 and 'Model does not implement init_model' in err
    assert not (tmp_path / 'res').exists()


def test_predictions_with_brackets_in_data_and_colliding_names(cli, curve, tmp_path):
    def_path, data = curve
    result = tmp_path / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    odd = tmp_path / 'run[1]'
    for folder, n in (('a', 3), ('b', 5)):
        (odd / folder).mkdir(parents=True)
        np.save(odd / folder / 'p.npy', np.ones((n, 1), np.float32))
    shutil.copy(data / 'x.npy', odd / 'x.npy')
    code, err = cli('-f', def_path, '-d', odd, '-r', result, '-p', '*/p.npy', '-c')
    assert code == 0, err
    assert np.load(result / 'predictions' / 'a' / 'p.npy.npy').shape == (3, 1)
    assert np.load(result / 'predictions' / 'b' / 'p.npy.npy').shape == (5, 1)


def test_text_files_are_utf8_whatever_the_locale(curve, tmp_path):
    def_path, data = curve
    (tmp_path / 'flaky').touch()  # error.txt then holds a message with a non-ASCII quote
    env = dict(os.environ, LC_ALL='C', LANG='C', PYTHONUTF8='0', PYTHONCOERCECLOCALE='0')
    run = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(def_path),
                          '-d', str(data), '-r', str(tmp_path / 'res'), '-y', '-ep', '9',
                          '--seed', '3', '-c', '--threads', '1'],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    failed = [r['trial'] for r in rows(tmp_path / 'res') if r['status'] == 'error']
    assert failed
    text = (tmp_path / 'res' / 'trials' / failed[0] / 'error.txt').read_bytes().decode('utf-8')
    assert 'cluster\u2019s scratch disk' in text


def test_a_results_directory_inside_the_data_is_not_data(cli, curve, tmp_path):
    """``-d . -r results``: the search's own files (and old searches moved aside) do not change
    the data's fingerprint, so the search continues; a real data file still does."""
    def_path, data = curve
    result = data / 'res'
    assert search(cli, def_path, data, result, '-ep', 3, '--seed', 3)[0] == 0
    code, err = search(cli, def_path, data, result, '--restart')
    assert code == 0, err
    assert len(moved_aside(result)) == 1
    code, err = search(cli, def_path, data, result)
    assert code == 0 and 'other settings' not in err, err
    np.save(data / 'x.npy', np.full((9, 1), 2, np.float32))
    code, err = search(cli, def_path, data, result)
    assert code == 1 and 'files under --data' in err and ': modified x.npy.' in err  # not res
