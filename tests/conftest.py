"""Shared fixtures: tiny one-hot sequence data with a planted motif, def.py files, the CLI."""
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# subprocesses (the CLI, python -m dlutil.prepare) import this checkout, installed or not
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))
# one torch thread in this process and the CLIs it starts: fast on a shared machine, and the
# same results however loaded it is (dlutil.threads picks the default from the load otherwise)
os.environ['OMP_NUM_THREADS'] = '1'


def onehot_motif_data(n, length=40, seed=0, motif=(0, 1, 2, 3, 3, 2)):
    """Random one-hot DNA, shape=(n, 4, 1, length); label 1 rows carry ``motif`` at a random spot."""
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, 4, size=(n, length))
    y = rng.integers(0, 2, size=n)
    for i in np.flatnonzero(y):
        start = rng.integers(0, length - len(motif))
        letters[i, start:start + len(motif)] = motif
    X = np.zeros((n, 4, 1, length), dtype=np.float32)
    for c in range(4):
        X[:, c, 0, :] = letters == c
    return X, y.astype(np.float32)


def write_h5(path, X, Y=None, chunks=None):
    with h5py.File(path, 'w') as f:
        f.create_dataset('data', data=X, chunks=chunks)
        if Y is not None:
            f.create_dataset('label', data=Y, chunks=(chunks[0],) + Y.shape[1:] if chunks else None)


@pytest.fixture
def h5_data(tmp_path):
    """A data directory with train.h5, valid.h5, test.h5 and two prediction files."""
    data = tmp_path / 'data'
    data.mkdir()
    for name, n, seed in (('train', 160, 0), ('valid', 64, 1), ('test', 64, 2)):
        write_h5(data / f'{name}.h5', *onehot_motif_data(n, seed=seed))
    X, _ = onehot_motif_data(30, seed=3)
    write_h5(data / 'test_pred_a.h5', X)
    write_h5(data / 'test_pred_b.h5', X[:10])
    return data


CLASSIFIER_DEF = '''
import os
import random

import torch
from torch import nn, optim

from base_model import ClassificationModel, ConvClassificationNetwork
from batch_generator import H5pyBatchGenerator
from constraints import MaxNormConstraint


def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)


def get_val_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))


def get_test_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'test.h5'))


def get_pred_generator(pred_path):
    return H5pyBatchGenerator(pred_path)


class Model(ClassificationModel):
    def init_model(self):
        config = self.config
        network = ConvClassificationNetwork(
            features=nn.Sequential(nn.Conv2d(4, config['filters'], (1, 6)), nn.ReLU(),
                                   nn.MaxPool2d((1, 35))),
            classifier=nn.Sequential(nn.Linear(config['filters'], 2)))
        optimizer = optim.Adam(network.parameters(), lr=config['lr'])
        constraints = [MaxNormConstraint(3, 'features.0')]
        super(Model, self).init_model(network, optimizer, constraints=constraints)


def get_config():
    return {'filters': random.choice([4, 8]), 'lr': random.choice([0.003, 0.01, 0.03])}
'''


@pytest.fixture
def classifier_def(tmp_path):
    path = tmp_path / 'def.py'
    path.write_text(CLASSIFIER_DEF)
    return path


def write_def(tmp_path, text, name='def.py'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(*args):
    """Run ``main.py`` in a subprocess, as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture
def cli(capsys):
    """Run ``main.main(argv)`` in this process (fast); returns ``(exit code, stderr)``."""
    from dlutil import cli as main

    def call(*args):
        code = main.main([str(a) for a in args])
        return code, capsys.readouterr().err
    return call


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)
    yield


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


def default_sigint():
    """In a child about to run the command: Ctrl-C as a terminal delivers it, even where the
    tests run in the background (where SIGINT is ignored, and Python would then ignore it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
