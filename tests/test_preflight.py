"""Data faults stop the search before the first trial; loaders and trials are seeded."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from conftest import CLASSIFIER_DEF, onehot_motif_data, write_def, write_h5
from test_cli_errors import assert_clean_error
from test_resume_parallel import command, comparable


def no_trial_ran(result):
    return not (result / 'search.csv').exists() and not (result / 'trials').exists()


def search(cli, def_path, data, result, *extra):
    return cli('-f', def_path, '-d', data, '-r', result, '-y', '-ep', 1, '-bs', 32, '-c', *extra)


def test_an_empty_file_is_named(cli, classifier_def, h5_data, tmp_path):
    write_h5(h5_data / 'train.h5', np.zeros((0, 4, 1, 40), np.float32), np.zeros(0, np.float32))
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r')
    assert_clean_error(code, err, 'training generator (get_train_generator)', 'train.h5',
                       'yielded no batches')
    assert no_trial_ran(tmp_path / 'r')


@pytest.mark.parametrize('workers', ['1', '2'])  # with 2, the check runs in a pool worker
def test_nan_in_the_inputs_is_a_data_fault_not_divergence(cli, classifier_def, h5_data, tmp_path,
                                                          workers):
    X, Y = onehot_motif_data(64, seed=1)
    X[0, 2, 0, 5] = np.nan
    write_h5(h5_data / 'valid.h5', X, Y)
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r', '--workers', workers)
    assert_clean_error(code, err, 'validation generator', 'valid.h5',
                       'inputs with nan at index (0, 2, 0, 5) of its first batch', 'data fault')
    assert no_trial_ran(tmp_path / 'r')


def test_nan_past_the_first_batch_is_found_when_the_loss_is_not_finite(cli, classifier_def,
                                                                      h5_data, tmp_path):
    write_h5(h5_data / 'valid.h5', *onehot_motif_data(64, seed=1))
    X, Y = onehot_motif_data(160)
    X[150, 1, 0, 7] = np.inf
    write_h5(h5_data / 'train.h5', X, Y)
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r')
    assert_clean_error(code, err, 'training generator', 'train.h5', 'inputs with inf',
                       'not a configuration diverging')
    assert not (tmp_path / 'r' / 'search.csv').exists()


def test_a_missing_label_dataset_is_named(cli, classifier_def, h5_data, tmp_path):
    X, _ = onehot_motif_data(64)
    write_h5(h5_data / 'valid.h5', X)
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r')
    assert_clean_error(code, err, 'validation generator', 'valid.h5', 'without labels',
                       '"label" dataset')
    assert no_trial_ran(tmp_path / 'r')


@pytest.mark.parametrize('workers', ['1', '2'])
def test_test_and_prediction_files_are_checked_before_the_search(cli, classifier_def, h5_data,
                                                                 tmp_path, workers):
    X, Y = onehot_motif_data(64)
    Y[3] = np.inf
    write_h5(h5_data / 'test.h5', X, Y)
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r', '-e', '--workers', workers)
    assert_clean_error(code, err, 'test generator (get_test_generator)', 'labels with inf')
    assert no_trial_ran(tmp_path / 'r')
    write_h5(h5_data / 'test.h5', *onehot_motif_data(64))
    write_h5(h5_data / 'test_pred_b.h5', np.zeros((0, 4, 1, 40), np.float32))
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r', '-e', '-p', 'test_pred_*',
                       '--workers', workers)
    assert_clean_error(code, err, 'prediction generator of', 'test_pred_b.h5', 'no batches')
    assert no_trial_ran(tmp_path / 'r')


def test_inputs_that_do_not_fit_the_network(cli, classifier_def, tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    for name in ('train', 'valid'):  # length 20: the network's pooling needs 35 positions
        write_h5(data / f'{name}.h5', *onehot_motif_data(64, length=20))
    code, err = search(cli, classifier_def, data, tmp_path / 'r')
    assert_clean_error(code, err, 'the first batch of the training generator',
                       '(32, 4, 1, 20)', 'does not fit the network (or its criterion) of any of 3')
    assert no_trial_ran(tmp_path / 'r')


CSV_DEF = '''
import os
import numpy as np
from torch import nn, optim
from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator


def get_train_generator(data_dir, batch_size):
    table = np.genfromtxt(os.path.join(data_dir, 'table.csv'), delimiter=',')
    return MatrixBatchGenerator.get_train_val_generator(table[:, :3], table[:, 3], 0.25,
                                                        batch_size)


class Model(RegressionModel):
    def init_model(self):
        network = nn.Linear(3, 1)
        super().init_model(network, CRITERION optim.SGD(network.parameters(), lr=0.01))


def get_config():
    return {}
'''


def write_csv(folder, header=True):
    folder.mkdir(exist_ok=True)
    rows = np.random.default_rng(0).normal(size=(40, 4))
    with open(folder / 'table.csv', 'w') as f:
        if header:
            f.write('a,b,c,target\n')
        np.savetxt(f, rows, delimiter=',')
    return folder


def test_a_header_row_in_a_csv(cli, tmp_path):
    """genfromtxt reads the header as a row of NaN; the split may put it in either set."""
    def_path = write_def(tmp_path, CSV_DEF.replace('CRITERION', ''))
    code, err = search(cli, def_path, write_csv(tmp_path / 'data'), tmp_path / 'r', '-bs', 64)
    assert_clean_error(code, err, 'with nan at index (', 'a header row in a CSV file')
    assert no_trial_ran(tmp_path / 'r')
    assert search(cli, def_path, write_csv(tmp_path / 'ok', header=False), tmp_path / 'r2')[0] == 0


def test_a_criterion_that_does_not_return_a_scalar(cli, tmp_path):
    criterion = 'lambda y, p: (p - y.view(p.shape)) ** 2,'
    def_path = write_def(tmp_path, CSV_DEF.replace('CRITERION', criterion))
    code, err = search(cli, def_path, write_csv(tmp_path / 'data', header=False), tmp_path / 'r')
    assert_clean_error(code, err, 'the criterion must return a scalar tensor, got (8, 1)')
    assert no_trial_ran(tmp_path / 'r')


ONE_SHOT_DEF = CLASSIFIER_DEF.replace('''def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)''', '''
def get_train_generator(data_dir, batch_size):
    train = H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)
    return GENERATOR''')


def test_a_one_shot_generator_is_refused(cli, h5_data, tmp_path):
    path = write_def(tmp_path, ONE_SHOT_DEF.replace('GENERATOR', '(batch for batch in train)'))
    code, err = search(cli, path, h5_data, tmp_path / 'r')
    assert_clean_error(code, err, 'the training generator (get_train_generator) is a one-shot '
                                  'iterator (generator)', 'exhausted after one epoch')
    assert no_trial_ran(tmp_path / 'r')


def test_a_list_of_train_and_val_is_taken_like_the_tuple(cli, h5_data, tmp_path):
    text = ONE_SHOT_DEF.replace('GENERATOR', "[train, H5pyBatchGenerator(os.path.join(data_dir, "
                                             "'valid.h5'))]")
    text = text.replace('def get_val_generator(data_dir):', 'def unused(data_dir):')
    code, err = search(cli, write_def(tmp_path, text), h5_data, tmp_path / 'r')
    assert code == 0, err
    # a list of two (x, y) batches is a generator, not a pair
    X, Y = onehot_motif_data(8)
    batches = CLASSIFIER_DEF.replace(
        "return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)",
        "import numpy as np\n    d = np.load(os.path.join(data_dir, 'b.npz'))\n"
        "    return [(d['X'][:4], d['Y'][:4]), (d['X'][4:], d['Y'][4:])]")
    np.savez(h5_data / 'b.npz', X=X, Y=Y)
    code, err = search(cli, write_def(tmp_path, batches, 'batches.py'), h5_data, tmp_path / 'r3')
    assert code == 0, err


# -- seeding ------------------------------------------------------------------------------------
SPLIT_DEF = CLASSIFIER_DEF.replace('''def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)''', '''
def get_train_generator(data_dir, batch_size):
    import h5py
    import numpy as np
    from batch_generator import MatrixBatchGenerator
    with h5py.File(os.path.join(data_dir, 'train.h5')) as f:
        X, Y = f['data'][:], f['label'][:]
    order = np.random.permutation(len(X))  # a split drawn from the global RNG
    train, val = order[:120], order[120:]
    return (MatrixBatchGenerator(X[train], Y[train], batch_size, shuffle=True),
            MatrixBatchGenerator(X[val], Y[val], reverse_complement=True))''').replace(
    'nn.ReLU(),', 'nn.ReLU(), nn.Dropout(0.3),')


def test_a_random_split_and_validation_draws_are_the_same_for_any_workers(cli, h5_data,
                                                                          tmp_path):
    def_path = write_def(tmp_path, SPLIT_DEF)
    argv = command(def_path, h5_data, tmp_path / 'two', '--workers', '2', '--trials', '3')
    argv[argv.index('-ep') + 1] = '1'  # three one-epoch trials, two in one worker
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    code, err = cli(*argv[2:argv.index('-r')], '-r', tmp_path / 'one',
                    *argv[argv.index('-r') + 2:-4], '--workers', '1', '--trials', '3')
    assert code == 0, err
    assert comparable(tmp_path / 'one') == comparable(tmp_path / 'two')


def test_cpu_never_initialises_cuda(cli, classifier_def, h5_data, tmp_path, monkeypatch):
    """As on a machine with a GPU: CUDA is there, and --cpu must not touch it."""
    def touched(name):  # one function per name: torch._dynamo refuses one under two names
        def call(*args, **kwargs):
            raise AssertionError(f'CUDA was touched: torch.cuda.{name}')
        return call
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    for name in ('get_rng_state_all', 'set_rng_state_all', 'get_rng_state', 'set_rng_state',
                 'init', 'set_device', 'synchronize'):
        monkeypatch.setattr(torch.cuda, name, touched(name))
    code, err = search(cli, classifier_def, h5_data, tmp_path / 'r', '-e', '-p', 'test_pred_*')
    assert code == 0, err
    assert not torch.cuda.is_initialized()
    best = json.loads((tmp_path / 'r' / 'best.json').read_text())
    assert os.path.exists(tmp_path / 'r' / 'trials' / best['trial'] / 'best.pt')


INIT = '        super(Model, self).init_model(network, optimizer, constraints=constraints)\n'


@pytest.mark.parametrize('where, old, new', [
    ("['extra']['counts']", INIT, INIT + """
    def extra_state(self):
        return {'counts': np.zeros(3)}
"""),
    ("['network']['features.0._extra_state']", 'class Model(', """\
class Counted(nn.Conv2d):
    def get_extra_state(self):
        return np.arange(4)

    def set_extra_state(self, state):
        pass


class Model(""")])
def test_a_state_checkpoints_could_not_hold_is_refused_before_any_trial(cli, h5_data, tmp_path,
                                                                        where, old, new):
    # checkpoints are read with weights_only=True: a numpy array in the state would be saved by
    # every trial and refused on resume; say so before training, naming the value's place
    text = CLASSIFIER_DEF.replace('import torch\n', 'import numpy as np\nimport torch\n')
    assert old in text
    text = text.replace(old, new)
    if 'Counted' in new:
        text = text.replace('(nn.Conv2d(4', '(Counted(4')
    def_path = write_def(tmp_path, text)
    code, err = search(cli, def_path, h5_data, tmp_path / 'r')
    assert_clean_error(code, err, str(def_path), f'state_dict(){where}', 'numpy.ndarray',
                       'weights_only=True', 'torch.as_tensor')
    assert no_trial_ran(tmp_path / 'r')
