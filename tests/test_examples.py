"""The shipped examples: their data scripts, embedH5.py, and the CLI run end to end on them.

Each end-to-end test makes a tiny, easy data set in ``tmp_path``, runs ``main.py`` in a
subprocess as a user would (``-y -e -p -ep 3 --seed 0 -c``) and checks what the user sees: the
exit code, best.json, test_result.json and the predictions.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CONV = REPO / 'examples' / 'conv_seq_classifier'
REG = REPO / 'examples' / 'function_regressor'


def load(path, name):
    """Import an example script by path (both examples have a make_data.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


embedH5 = load(CONV / 'embedH5.py', 'example_embedH5')
conv_data = load(CONV / 'make_data.py', 'example_conv_make_data')
reg_data = load(REG / 'make_data.py', 'example_reg_make_data')


def run_main(args, cwd, **env):
    """``python main.py ARGS`` on the CPU, as a user runs it; returns the CompletedProcess.

    One torch thread: these models are so small that a second thread only adds waiting, many
    times over when other processes share the cores.
    """
    environ = {**os.environ, 'OMP_NUM_THREADS': '1', **env}
    return subprocess.run([sys.executable, str(REPO / 'main.py'), *args, '--seed', '0', '-c',
                           '--threads', '1'],
                          cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def run_embed(tsv, target, out):
    return subprocess.run([sys.executable, str(CONV / 'embedH5.py'), str(tsv), str(target),
                           str(out)], capture_output=True, text=True, timeout=60)


def write_pasted(fasta, tsv):
    """What ``paste - - -d' ' < fasta > tsv`` does to a two-line-per-record FASTA."""
    lines = Path(fasta).read_text().splitlines()
    Path(tsv).write_text(''.join(f'{name} {seq}\n' for name, seq in zip(lines[::2], lines[1::2])))


def check_best_json(results):
    best = json.loads((results / 'best.json').read_text())
    assert {'trial', 'config', 'epoch', 'reward'} <= set(best)
    assert isinstance(best['config'], dict) and best['config']
    assert best['epoch'] >= 1
    return best


# -- embedH5.py -------------------------------------------------------------------------------
def test_embed_round_trip(tmp_path):
    sequences = ['ACGTNACGTA', 'acgtnnGGCC', 'TTTTAAAACC']
    tsv, target, out = tmp_path / 'x.tsv', tmp_path / 'x.target', tmp_path / 'x.h5'
    tsv.write_text(''.join(f'>seq{i} {s}\n' for i, s in enumerate(sequences)))
    target.write_text('1\n0\n1\n')

    assert embedH5.embed(tsv, target, out, chunk_rows=2) == (3, 10)

    with h5py.File(out, 'r') as f:
        data, label = f['data'][:], f['label'][:]
        assert f['data'].chunks == (2, 4, 1, 10)
        names = [n.decode() for n in f['name'][:]]
    assert data.shape == (3, 4, 1, 10) and data.dtype == np.float32
    assert label.tolist() == [1, 0, 1] and np.issubdtype(label.dtype, np.integer)
    assert names == ['seq0', 'seq1', 'seq2']
    assert [embedH5.decode(row) for row in data] == [s.upper() for s in sequences]
    # by hand: A, C, G, T rows in that order; N is 0.25 everywhere
    expected = np.array([[1, 0, 0, 0, .25], [0, 1, 0, 0, .25], [0, 0, 1, 0, .25],
                         [0, 0, 0, 1, .25]], dtype=np.float32)
    np.testing.assert_array_equal(data[0, :, 0, :5], expected)
    assert np.all(data.sum(axis=1) == 1)


def test_embed_readme_pipeline(tmp_path):
    """make_data.py, then paste and embedH5.py as the README runs them."""
    conv_data.make_dataset(tmp_path / 'raw', (('train', 40),), length=30, seed=3, n_rate=0.05)
    fasta, tsv, out = tmp_path / 'raw' / 'train.fa', tmp_path / 'tmp.tsv', tmp_path / 'train.h5'
    if shutil.which('paste'):
        with open(fasta) as source, open(tsv, 'w') as sink:
            subprocess.run(['paste', '-', '-', "-d "], stdin=source, stdout=sink, check=True)
    else:
        write_pasted(fasta, tsv)
    done = run_embed(tsv, tmp_path / 'raw' / 'train.target', out)
    assert done.returncode == 0, done.stderr

    sequences = fasta.read_text().splitlines()[1::2]
    labels = np.loadtxt(tmp_path / 'raw' / 'train.target')
    with h5py.File(out, 'r') as f:
        assert [embedH5.decode(row) for row in f['data'][:]] == sequences
        np.testing.assert_array_equal(f['label'][:], labels)
    assert labels.sum() == 20


@pytest.mark.parametrize('records, targets, blamed, words', [
    (['>a ACGT', '>b ACG'], '0\n1\n', 'tsv', ['line 2', 'length 3', 'length 4']),
    (['>a ACGT', '>b ACGT', '>c ACGT'], '0\n1\n', 'tsv', ['line 3', 'more sequences']),
    (['>a ACGT'], '0\n1\n', 'tsv', ['1 sequences', '2 labels']),
    (['>a ACGT', '>b ACGT'], '0\nyes\n', 'target', ['line 2', "'yes'"]),
    (['>a ACGT', 'ACGT'], '0\n1\n', 'tsv', ['line 2', '>name SEQUENCE']),
    (['>a AC-T'], '0\n', 'tsv', ['line 1', "'-'"]),
])
def test_embed_rejects_malformed_input(tmp_path, records, targets, blamed, words):
    tsv, target, out = tmp_path / 'in.tsv', tmp_path / 'in.target', tmp_path / 'out.h5'
    tsv.write_text('\n'.join(records) + '\n')
    target.write_text(targets)

    done = run_embed(tsv, target, out)

    assert done.returncode != 0
    assert 'Traceback' not in done.stderr
    assert str(tsv if blamed == 'tsv' else target) in done.stderr
    for word in words:
        assert word in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.target', 'in.tsv']  # nothing left


def test_embed_missing_input_is_a_clear_error(tmp_path):
    done = run_embed(tmp_path / 'nope.tsv', tmp_path / 'nope.target', tmp_path / 'out.h5')
    assert done.returncode != 0 and 'Traceback' not in done.stderr
    assert 'nope.target' in done.stderr


# -- make_data.py -----------------------------------------------------------------------------
def test_conv_make_data_is_seeded_and_balanced(tmp_path):
    for folder in ('a', 'b'):
        conv_data.make_dataset(tmp_path / folder, (('train', 50), ('test', 10)), seed=7)
    for name in ('train.fa', 'train.target', 'test.fa', 'test.target'):
        assert (tmp_path / 'a' / name).read_text() == (tmp_path / 'b' / name).read_text()
    labels = np.loadtxt(tmp_path / 'a' / 'train.target')
    assert labels.sum() == 25
    sequences, labels = conv_data.make_split(200, 50, 'TGACGTCA', 0.0, 0.0,
                                             np.random.default_rng(0))
    assert all(('TGACGTCA' in s) == bool(y) for s, y in zip(sequences, labels))


# -- the examples end to end ------------------------------------------------------------------
def test_conv_seq_classifier_end_to_end(tmp_path):
    raw, data, results = tmp_path / 'raw_data', tmp_path / 'data', tmp_path / 'results'
    # an easy set: the motif planted without mutations, so 3 epochs suffice
    conv_data.make_dataset(raw, (('train', 400), ('valid', 100), ('test', 100)),
                           mutation_rate=0.0, n_rate=0.01, seed=0)
    for split in ('train', 'valid', 'test'):
        write_pasted(raw / f'{split}.fa', tmp_path / 'tmp.tsv')
        embedH5.embed(tmp_path / 'tmp.tsv', raw / f'{split}.target', data / f'{split}.h5')

    done = run_main(['-f', str(CONV / 'conv_model.py'), '-d', 'data', '-r', 'results',
                     '-y', '-e', '-p', 'test.h5*', '-ep', '3', '-bs', '20'], cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    best = check_best_json(results)
    assert {'filters', 'kernel_len', 'dropout', 'lr', 'max_norm'} <= set(best['config'])
    test = json.loads((results / 'test_result.json').read_text())
    assert {'loss', 'accuracy', 'auroc'} <= set(test)
    assert test['auroc'] > 0.8, test
    predictions = np.load(results / 'predictions' / 'test.h5.npy')
    assert predictions.shape == (100, 2)
    np.testing.assert_allclose(predictions.sum(axis=1), 1, rtol=1e-5)


def test_conv_model_reports_wrong_seq_len(tmp_path):
    raw, data = tmp_path / 'raw_data', tmp_path / 'data'
    conv_data.make_dataset(raw, (('train', 20), ('valid', 10)), length=60, seed=0)
    for split in ('train', 'valid'):
        write_pasted(raw / f'{split}.fa', tmp_path / 'tmp.tsv')
        embedH5.embed(tmp_path / 'tmp.tsv', raw / f'{split}.target', data / f'{split}.h5')

    done = run_main(['-f', str(CONV / 'conv_model.py'), '-d', 'data', '-r', 'results', '-y',
                     '-ep', '1'], cwd=tmp_path)

    assert done.returncode != 0 and 'Traceback' not in done.stderr
    assert 'SEQ_LEN=60' in done.stderr


def test_function_regressor_end_to_end(tmp_path):
    data, results = tmp_path / 'data', tmp_path / 'results'
    reg_data.make_dataset(data, n_train=600, n_test=200, n_pred=50, seed=0)

    done = run_main(['-f', str(REG / 'reg_model.py'), '-d', 'data', '-r', 'results',
                     '-y', '-e', '-p', 'X_pred.csv', '-ep', '3', '-bs', '20'],
                    cwd=tmp_path, VAL_RATIO='0.25')

    assert done.returncode == 0, done.stderr
    best = check_best_json(results)
    assert {'width', 'depth', 'lr'} <= set(best['config'])
    test = json.loads((results / 'test_result.json').read_text())
    assert {'loss', 'mse', 'pearson'} <= set(test)
    assert test['pearson'] > 0.5, test
    predictions = np.load(results / 'predictions' / 'X_pred.csv.npy')
    assert predictions.shape == (50,)
    truth = reg_data.target(np.loadtxt(data / 'X_pred.csv', delimiter=',', skiprows=1))
    assert np.corrcoef(predictions, truth)[0, 1] > 0.5


def test_function_regressor_rejects_bad_val_ratio(tmp_path):
    reg_data.make_dataset(tmp_path / 'data', n_train=20, n_test=5, n_pred=5, seed=0)

    done = run_main(['-f', str(REG / 'reg_model.py'), '-d', 'data', '-r', 'results', '-y',
                     '-ep', '1'], cwd=tmp_path, VAL_RATIO='1.5')

    assert done.returncode != 0 and 'Traceback' not in done.stderr
    assert 'VAL_RATIO' in done.stderr and '1.5' in done.stderr
