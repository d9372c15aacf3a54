"""The model zoo: DeepSEA, Basset, ChromDragoNN, DanQ and their ready models.

References: the seed's parameter counts (50 classes, 1000 bp), DanQ's count from its layer sizes,
flatten sizes worked out by hand at other lengths, and each seed's ``forward`` rewritten here with
``torch.nn.functional`` on the seed's parameter names, which the zoo's networks must match output
for output. The big networks are built once per module; forwards run on two sequences without
gradients. Every ready model trains one epoch through the CLI on 16 random sequences.
"""
import csv
import json
import os
import pickle
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from base_model import ClassificationModel, MultiLabelModel, RegressionModel
from dlutil.data.batches import count_parameters
from conftest import write_def, write_h5
from test_examples import load
from models import basset, chromdragonn, danq, deepsea
from models.zoo import InputShapeError, OneHotInput

ARCHITECTURES = {'DeepSEA': deepsea.DeepSEA, 'Basset': basset.Basset,
                 'ChromDragoNN': chromdragonn.ChromDragoNN, 'DanQ': danq.DanQ}


def danq_parameters(n_classes=50, positions=75):
    """DanQ's trainable parameters from its layer sizes (PyTorch LSTMs have two bias vectors)."""
    conv = 4 * 26 * 320 + 320
    lstm_direction = 4 * 320 * (320 + 320) + 2 * 4 * 320
    dense = positions * 640 * 925 + 925
    return conv + 2 * lstm_direction + dense + 925 * n_classes + n_classes


PARAMETERS_AT_1000 = {'DeepSEA': 52_038_425, 'Basset': 5_616_950, 'ChromDragoNN': 8_274_146,
                      'DanQ': danq_parameters()}
# positions left before flattening, worked out by hand from kernels, paddings and pools
POSITIONS = {'DeepSEA': {1000: 53, 600: 28, 250: 6},
             'Basset': {1000: 18, 600: 10, 250: 2},
             'ChromDragoNN': {1000: 21, 600: 13, 250: 6},
             'DanQ': {1000: 75, 600: 44, 250: 17}}
CHANNELS = {'DeepSEA': 960, 'Basset': 200, 'ChromDragoNN': 200, 'DanQ': 640}
MINIMUM = {'DeepSEA': 163, 'Basset': 168, 'ChromDragoNN': 6, 'DanQ': 38}


# -- the seeds' forward passes, functional, in eval mode, on the seeds' parameter names -------
def _conv(h, sd, name, padding=0):
    conv = F.conv1d if h.dim() == 3 else F.conv2d
    padding = padding if h.dim() == 3 else (padding, 0)
    return conv(h, sd[f'{name}.weight'], sd[f'{name}.bias'], padding=padding)


def _bn(h, sd, name):
    return F.batch_norm(h, sd[f'{name}.running_mean'], sd[f'{name}.running_var'],
                        sd[f'{name}.weight'], sd[f'{name}.bias'])


def _dense(h, sd, name):
    return F.linear(h, sd[f'{name}.weight'], sd[f'{name}.bias'])


def seed_deepsea(sd, x):
    h = F.max_pool1d(F.relu(_conv(x, sd, 'conv1')), 4, 4)
    h = F.max_pool1d(F.relu(_conv(h, sd, 'conv2')), 4, 4)
    h = F.relu(_conv(h, sd, 'conv3')).reshape(len(x), -1)
    return _dense(F.relu(_dense(h, sd, 'linear1')), sd, 'linear2')


def seed_basset(sd, x):
    h = x
    for layer, pool in (('layer1', 3), ('layer2', 4), ('layer3', 4)):
        h = F.max_pool1d(F.relu(_bn(_conv(h, sd, f'{layer}.0'), sd, f'{layer}.1')), pool)
    h = F.relu(_dense(h.reshape(len(x), -1), sd, 'fc1'))
    return _dense(F.relu(_dense(h, sd, 'fc2')), sd, 'fc3')


def seed_chromdragonn(sd, x):
    def conv_bn_relu(h, conv, bn, padding):
        return F.relu(_bn(_conv(h, sd, conv, padding), sd, bn))

    def blocks(h, layer, kernels):  # L1Block ... L4Block, two of each
        for i in range(2):
            out = h
            for j, k in enumerate(kernels, 1):
                out = _bn(_conv(F.relu(out) if j > 1 else out, sd, f'{layer}.{i}.conv{j}',
                                k // 2), sd, f'{layer}.{i}.bn{j}')
            h = F.relu(out + h)
        return h

    h = x.unsqueeze(-1)  # the seed's view(-1, 4, 1000, 1)
    h = conv_bn_relu(conv_bn_relu(h, 'conv1', 'bn1', 1), 'conv2', 'bn2', 1)
    h = blocks(h, 'layer1', (3, 3))
    h = F.max_pool2d(blocks(conv_bn_relu(h, 'c1to2', 'b1to2', 1), 'layer2', (7, 7)), (3, 1))
    h = F.max_pool2d(blocks(conv_bn_relu(h, 'c2to3', 'b2to3', 3), 'layer3', (7, 3, 3)), (4, 1))
    h = blocks(h, 'layer4', (7, 7))
    h = F.max_pool2d(conv_bn_relu(h, 'conv3', 'bn3', 4), (4, 1)).reshape(len(x), -1)
    h = F.relu(_bn(_dense(h, sd, 'fc1'), sd, 'bn4'))
    return _dense(F.relu(_bn(_dense(h, sd, 'fc2'), sd, 'bn5')), sd, 'fc3')


def reference_danq(sd, x):
    """The paper's DanQ: the LSTM runs along the pooled positions (time-major here)."""
    h = F.max_pool1d(F.relu(_conv(x, sd, 'nnet.0')), 13, 13)
    lstm = nn.LSTM(320, 320, bidirectional=True)
    lstm.load_state_dict({k[len('bdlstm.'):]: v for k, v in sd.items() if k.startswith('bdlstm.')})
    out, _ = lstm(h.permute(2, 0, 1))  # (positions, n, 640)
    h = out.permute(1, 0, 2).reshape(len(x), -1)
    return _dense(F.relu(_dense(h, sd, 'classifier.1')), sd, 'classifier.3')


REFERENCES = {'DeepSEA': seed_deepsea, 'Basset': seed_basset,
              'ChromDragoNN': seed_chromdragonn, 'DanQ': reference_danq}


def build(name, n_classes, seq_len):
    """An architecture with seeded weights in eval mode, its batch norms calibrated on data.

    Made-up batch-norm statistics would let ReLUs silence the signal, and a network whose output
    hardly depends on its input would match any reference.
    """
    torch.manual_seed(0)
    network = ARCHITECTURES[name](n_classes, seq_len=seq_len)
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.momentum = None  # running statistics = the plain average over the batch
        norm.reset_running_stats()
    if norms:
        with torch.no_grad():
            network.train()(onehot(8, seq_len, seed=7))
    return network.eval()


def assert_same_function(y, expected):
    """Equal up to a small fraction of how much the outputs vary between sequences."""
    spread = float(expected.std(dim=0).min())
    assert spread > 1e-4 * float(expected.abs().max())  # the output depends on the input
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-3 * spread)


def onehot(n, length, seed=0):
    """Random one-hot DNA, shape=(n, 4, length)."""
    letters = np.random.default_rng(seed).integers(0, 4, size=(n, length))
    return torch.from_numpy(np.eye(4, dtype=np.float32)[letters].transpose(0, 2, 1).copy())


@pytest.fixture(scope='module', params=list(ARCHITECTURES))
def at_1000(request):
    """(name, network for 50 classes and 1000 bp): built once per module."""
    return request.param, build(request.param, 50, 1000)


def first_dense(network):
    return next(m for m in network.modules() if isinstance(m, nn.Linear))


# -- architectures ----------------------------------------------------------------------------
def test_parameter_counts_at_1000(at_1000):
    name, network = at_1000
    assert count_parameters(network) == PARAMETERS_AT_1000[name]
    assert first_dense(network).in_features == POSITIONS[name][1000] * CHANNELS[name]


@torch.no_grad()
def test_matches_seed_at_1000(at_1000):
    name, network = at_1000
    x = onehot(2, 1000)
    y = network(x)
    assert y.shape == (2, 50)
    assert_same_function(y, REFERENCES[name](network.state_dict(), x))


@pytest.mark.parametrize('seq_len', [600, 250])
@pytest.mark.parametrize('name', list(ARCHITECTURES))
@torch.no_grad()
def test_other_lengths(name, seq_len):
    network = build(name, 3, seq_len)
    assert first_dense(network).in_features == POSITIONS[name][seq_len] * CHANNELS[name]
    x = onehot(2, seq_len, seed=seq_len)
    y = network(x)
    assert y.shape == (2, 3)
    assert_same_function(y, REFERENCES[name](network.state_dict(), x))


@pytest.mark.parametrize('name', list(ARCHITECTURES))
def test_too_short_names_the_minimum(name):
    minimum = MINIMUM[name]
    with torch.no_grad():
        assert build(name, 2, minimum)(onehot(2, minimum)).shape == (2, 2)
    with pytest.raises(ValueError, match=f'{name} needs seq_len >= {minimum}.*seq_len='
                                         f'{minimum - 1}'):
        ARCHITECTURES[name](2, seq_len=minimum - 1)


def test_hyperparameters_reach_the_layers():
    network = deepsea.DeepSEA(2, seq_len=200, dropout=0.1, final_dropout=0.3, hidden=16)
    assert (network.drop1.p, network.drop2.p, network.linear1.out_features) == (0.1, 0.3, 16)
    network = chromdragonn.ChromDragoNN(2, seq_len=100, dropout=0.4, blocks=(1, 0, 1, 3))
    assert network.dropout == 0.4 and [len(network.layer1), len(network.layer2),
                                       len(network.layer3), len(network.layer4)] == [1, 0, 1, 3]
    network = danq.DanQ(2, seq_len=100, dropout=0.1, final_dropout=0.2, hidden=8)
    assert (network.nnet[3].p, network.classifier[0].p, network.classifier[1].out_features) == \
        (0.1, 0.2, 8)
    with pytest.raises(ValueError, match='seq_len must be a whole number'):
        basset.Basset(2, seq_len=600.5)


@torch.no_grad()
def test_input_shape_is_checked_and_4d_accepted():
    network = OneHotInput(build('Basset', 2, 200))
    x = onehot(3, 200)
    torch.testing.assert_close(network(x.unsqueeze(2)), network(x))
    with pytest.raises(InputShapeError, match=r'shape \(3, 4, 190\) but must have shape '
                                              r'\(n, 4, 200\) or \(n, 4, 1, 200\)'):
        network(onehot(3, 190))
    with pytest.raises(InputShapeError, match=r'\(3, 200, 4\)'):
        network.network(x.transpose(1, 2))


# -- ready models ------------------------------------------------------------------------------
READY = [(module, name + task)
         for module, name in ((deepsea, 'DeepSEA'), (basset, 'Basset'),
                              (chromdragonn, 'ChromDragoNN'), (danq, 'DanQ'))
         for task in ('MultiClass', 'MultiLabel', 'Regression')]
TASK_BASES = {'MultiClass': ClassificationModel, 'MultiLabel': MultiLabelModel,
              'Regression': RegressionModel}


@pytest.mark.parametrize('module, name', READY)
def test_ready_models_are_tasks_with_the_seed_defaults(module, name):
    cls = getattr(module, name)
    task = next(t for t in TASK_BASES if name.endswith(t))
    assert issubclass(cls, TASK_BASES[task]) and cls.__module__ == f'dlutil.{module.__name__}'
    assert pickle.loads(pickle.dumps(cls)) is cls  # worker processes get it by name
    assert name.split(task)[0] in cls.__doc__ and 'n_classes' in cls.__doc__
    assert cls.recommended_batch_size == module.TRAINING.batch_size
    assert cls.grad_clip_norm == module.TRAINING.grad_clip_norm
    assert cls.early_stopping_patience == 5


SEED_OPTIMIZERS = [  # the seed's settings (DanQ: the paper's)
    (deepsea.DeepSEAMultiLabel, torch.optim.SGD, {'lr': 0.01, 'momentum': 0.9}, None, 100),
    (basset.BassetMultiLabel, torch.optim.Adam, {'lr': 1e-4}, 0.5, 100),
    (chromdragonn.ChromDragoNNMultiLabel, torch.optim.Adam, {'lr': 0.002}, None, 256),
    (danq.DanQMultiLabel, torch.optim.RMSprop, {'lr': 0.001, 'alpha': 0.9}, None, 100),
]


@pytest.mark.parametrize('cls, optimizer, options, clip, batch_size', SEED_OPTIMIZERS)
def test_ready_model_defaults(cls, optimizer, options, clip, batch_size):
    seq_len = max(MINIMUM.values())
    model = cls({'n_classes': 2, 'seq_len': seq_len}, device='cpu')
    assert type(model.optimizer) is optimizer
    assert {k: model.optimizer.param_groups[0][k] for k in options} == options
    assert model.optimizer.param_groups[0]['weight_decay'] == 0
    assert model.grad_clip_norm == clip and cls.recommended_batch_size == batch_size
    assert isinstance(model.network, OneHotInput)
    assert model.network.network.seq_len == seq_len


def test_config_overrides():
    config = {'n_classes': 4, 'seq_len': 300, 'lr': 0.003, 'weight_decay': 1e-6,
              'dropout': 0.1, 'hidden': 32, 'grad_clip_norm': None,
              'early_stopping_patience': 2}
    model = basset.BassetMultiLabel(json.loads(json.dumps(config)), device='cpu')
    group = model.optimizer.param_groups[0]
    assert (group['lr'], group['weight_decay']) == (0.003, 1e-6)
    assert model.grad_clip_norm is None and model.early_stopping_patience == 2
    assert basset.BassetMultiLabel.grad_clip_norm == 0.5  # the class keeps the default
    network = model.network.network
    assert (network.dropout1.p, network.fc1.out_features, network.fc3.out_features) == \
        (0.1, 32, 4)
    model = deepsea.DeepSEARegression({'n_classes': 1, 'seq_len': 200, 'optimizer': 'adam'},
                                      device='cpu')
    assert type(model.optimizer) is torch.optim.Adam
    model = chromdragonn.ChromDragoNNMultiClass(
        {'n_classes': 2, 'seq_len': 50, 'blocks': [1, 1, 1, 1]}, device='cpu')
    assert model.network.network.blocks == (1, 1, 1, 1)


def test_config_problems_are_reported_together():
    with pytest.raises(ValueError) as caught:
        basset.BassetMultiLabel({'n_clases': 3, 'dropuot': 0.1, 'momentum': 0.9}, device='cpu')
    message = str(caught.value)
    assert "'n_classes' is required" in message
    assert "unknown key 'n_clases' (did you mean 'n_classes'?)" in message
    assert "unknown key 'dropuot' (did you mean 'dropout'?)" in message
    assert "momentum=0.9 does not apply to optimizer 'adam'" in message
    with pytest.raises(ValueError, match="optimizer must be one of .* got 'adamw'"):
        danq.DanQMultiClass({'n_classes': 2, 'seq_len': 100, 'optimizer': 'adamw'})
    with pytest.raises(ValueError, match='Basset needs seq_len >= 168'):
        basset.BassetMultiLabel({'n_classes': 2, 'seq_len': 100}, device='cpu')


# -- every ready model through the CLI ---------------------------------------------------------
ZOO_DEF = '''
import os

import models.{module}
from batch_generator import H5pyBatchGenerator


def get_train_generator(data_dir, batch_size):
    train = H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)
    return train, get_test_generator(data_dir)


def get_test_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))


get_pred_generator = H5pyBatchGenerator


def get_config():
    return {{'n_classes': 3, 'seq_len': {seq_len}}}


Model = models.{module}.{name}
'''
CLI_SEQ_LEN = 200


def tiny_data(data_dir, task, seed, four_d=False):
    """16 random one-hot sequences of CLI_SEQ_LEN bp with random labels for 3 outputs.

    Multi-label columns hold 8 positives each, so every task has both classes.
    """
    rng = np.random.default_rng(seed)
    X = onehot(16, CLI_SEQ_LEN, seed).numpy()
    if task == 'MultiClass':
        Y = rng.permutation(np.arange(16) % 3)
    elif task == 'MultiLabel':
        Y = np.stack([rng.permutation(16) < 8 for _ in range(3)], axis=1).astype(np.float32)
    else:
        Y = rng.normal(size=(16, 3)).astype(np.float32)
    write_h5(data_dir / ('train.h5' if seed == 0 else 'valid.h5'),
             X[:, :, None, :] if four_d else X, Y)


@pytest.mark.parametrize('module, name', READY)
def test_ready_model_trains_through_the_cli(tmp_path, cli, module, name):
    task = next(t for t in TASK_BASES if name.endswith(t))
    data = tmp_path / 'data'
    data.mkdir()
    for seed in (0, 1):  # multi-class data as (n, 4, 1, length): the wrapper squeezes it
        tiny_data(data, task, seed, four_d=task == 'MultiClass')
    path = write_def(tmp_path, ZOO_DEF.format(module=module.__name__.split('.')[-1], name=name,
                                              seq_len=CLI_SEQ_LEN))
    results = tmp_path / 'results'
    code, err = cli('-f', path, '-d', data, '-r', results, '-y', '-e', '-p', 'valid.h5',
                    '-ep', 1, '--eta', 2, '-bs', 8, '-c', '--seed', 0)
    assert code == 0, err

    with open(results / 'trials' / 't0000' / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = {k: float(v) for k, v in rows[0].items()}
    assert np.isfinite(row['train_loss']) and np.isfinite(row['val_loss'])
    expected = {'MultiClass': ['val_accuracy', 'val_auroc'],
                'MultiLabel': ['val_auroc', 'val_auprc'] + [f'val_{m}_{i}' for m in
                                                            ('auroc', 'auprc') for i in range(3)],
                'Regression': ['val_mse', 'val_pearson']}[task]
    assert set(expected) <= set(row) and all(np.isfinite(row[k]) for k in expected)
    test = json.loads((results / 'test_result.json').read_text())
    assert np.isclose(test['loss'], row['val_loss'], rtol=1e-4)  # best epoch = last epoch
    predictions = np.load(results / 'predictions' / 'valid.h5.npy')
    assert predictions.shape == (16, 3) and np.all(np.isfinite(predictions))
    if task == 'MultiClass':
        np.testing.assert_allclose(predictions.sum(axis=1), 1, rtol=1e-5)
    elif task == 'MultiLabel':
        assert np.all((predictions >= 0) & (predictions <= 1))


def test_wrong_sequence_length_stops_the_search(tmp_path, cli):
    data = tmp_path / 'data'
    data.mkdir()
    for seed in (0, 1):
        tiny_data(data, 'MultiLabel', seed)
    path = write_def(tmp_path, ZOO_DEF.format(module='danq', name='DanQMultiLabel', seq_len=300))
    code, err = cli('-f', path, '-d', data, '-r', tmp_path / 'results', '-y', '-ep', 1,
                    '--eta', 2, '-bs', 8, '-c', '--seed', 0)
    assert code != 0
    assert f'X has shape (8, 4, {CLI_SEQ_LEN}) but must have shape (n, 4, 300)' in err


# -- examples/basset_multilabel --------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[1] / 'examples' / 'basset_multilabel'


def test_example_data_plants_a_motif_of_each_positive_task():
    make_data = load(EXAMPLE / 'make_data.py', 'basset_make_data')
    sequences, labels = make_data.make_sequences(50, 120, mutation_rate=0.0, seed=3)
    assert labels.shape == (50, len(make_data.MOTIFS)) and len(sequences) == 50
    assert 0 < labels.mean() < 1 and {len(s) for s in sequences} == {120}
    complement = str.maketrans('ACGT', 'TGCA')
    for sequence, row in zip(sequences, labels):
        for motifs, positive in zip(make_data.MOTIFS.values(), row):
            if positive:
                assert any(m in sequence or m.translate(complement)[::-1] in sequence
                           for m in motifs)
    with pytest.raises(ValueError, match='--length must be at least 94 bp'):
        make_data.make_sequences(10, 93)


def test_example_runs_end_to_end(tmp_path):
    """run.sh at a tiny size: make_data.py, python -m dlutil.prepare, then search, test and
    predict."""
    env = {**os.environ, 'WORK': str(tmp_path), 'LENGTH': '216', 'N': '80', 'EPOCHS': '1',
           'OMP_NUM_THREADS': '1'}
    done = subprocess.run(['bash', str(EXAMPLE / 'run.sh'), '--eta', '2', '-bs', '16',
                           '--seed', '0', '-c', '--threads', '1'],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = tmp_path / 'results' / '216bp_80'
    test = json.loads((results / 'test_result.json').read_text())
    assert {'loss', 'auroc', 'auprc', 'auroc_ctcf', 'auprc_nrf1'} <= set(test)
    assert np.isfinite(test['loss'])
    with h5py.File(tmp_path / 'data' / '216bp_80' / 'test.h5', 'r') as f:
        rows = len(f['data'])
    predictions = np.load(results / 'predictions' / 'test.h5.npy')
    assert predictions.shape == (rows, 4) and np.all((predictions >= 0) & (predictions <= 1))
