"""def.py for ``benchmarks/bench_training.py``: a small sequence CNN on one-hot DNA.

The benchmark imports this file too, so its hand-written PyTorch loop trains the very same
network (:func:`build_network`) with the same optimizer (:func:`build_optimizer`).

Data (written by the benchmark): ``DATA/train.h5`` and ``DATA/valid.h5``, each with ``data``,
float32 shape=(n, 4, 1, 101), one-hot DNA, and ``label``, int64 shape=(n,), class 0 or 1.

Environment variables (read when the CLI calls the loaders, not at import):

``BENCH_THREADS``
    ``torch.set_num_threads`` for the training process (default: leave torch's default).
``BENCH_LOADER``
    ``memory`` (default): read the HDF5 files into a ``MatrixBatchGenerator``;
    ``h5``: stream the training file with ``H5pyBatchGenerator``.
"""
import os

import h5py
import torch
from torch import nn

import base_model
from batch_generator import H5pyBatchGenerator, MatrixBatchGenerator

LENGTH = 101


def get_config():
    """One fixed configuration: the benchmark trains exactly this network."""
    return {'filters': 64, 'kernel': 11, 'hidden': 64, 'dropout': 0.2, 'lr': 1e-3}


def build_network(config):
    """Two convolution blocks over (n, 4, 1, 101), then a two-layer classifier (2 classes)."""
    f = config['filters']
    features = nn.Sequential(
        nn.Conv2d(4, f, (1, config['kernel']), padding=(0, config['kernel'] // 2)),
        nn.ReLU(),
        nn.MaxPool2d((1, 4)),                      # 101 -> 25
        nn.Conv2d(f, f, (1, 5), padding=(0, 2)),
        nn.ReLU(),
        nn.MaxPool2d((1, 5)),                      # 25 -> 5
        nn.Dropout(config['dropout']),
    )
    classifier = nn.Sequential(
        nn.Linear(f * 5, config['hidden']),
        nn.ReLU(),
        nn.Dropout(config['dropout']),
        nn.Linear(config['hidden'], 2),
    )
    return base_model.ConvClassificationNetwork(features, classifier)


def build_optimizer(network, config):
    return torch.optim.Adam(network.parameters(), lr=config['lr'])


def set_threads():
    threads = os.environ.get('BENCH_THREADS')
    if threads:
        torch.set_num_threads(int(threads))


def read_h5(path):
    with h5py.File(path, 'r') as f:
        return f['data'][:], f['label'][:]


def get_train_generator(data_dir, batch_size):
    set_threads()
    path = os.path.join(data_dir, 'train.h5')
    if os.environ.get('BENCH_LOADER', 'memory') == 'h5':
        return H5pyBatchGenerator(path, batch_size, shuffle=True)
    X, Y = read_h5(path)
    return MatrixBatchGenerator(X, Y, batch_size, shuffle=True)


def get_val_generator(data_dir):
    X, Y = read_h5(os.path.join(data_dir, 'valid.h5'))
    return MatrixBatchGenerator(X, Y)


def get_test_generator(data_dir):
    return get_val_generator(data_dir)


class Model(base_model.ClassificationModel):
    def init_model(self):
        network = build_network(self.config)
        super().init_model(network, build_optimizer(network, self.config))
