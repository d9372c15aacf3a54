"""def.py for ``benchmarks/bench_training.py``: a small sequence CNN on one-hot DNA.

The benchmark imports this file too, so its hand-written PyTorch loop trains the very same
network (:func:`build_network`) with the same optimizer (:func:`build_optimizer`).

Data (written by the benchmark): ``DATA/train.h5`` and ``DATA/valid.h5``, each with ``data``,
float32 shape=(n, 4, 1, 101), one-hot DNA, and ``label``, int64 shape=(n,), class 0 or 1.

Beyond a plain def.py, ``Model`` records two extra columns in ``history.csv`` for the benchmark:
``train_cpu_seconds`` (CPU time of the training pass) and ``train_threads``
(``torch.get_num_threads()``); and its ``end_epoch`` takes part in the lock-step below.

Environment variables (read when the CLI calls the loaders or builds the model, not at import):

``BENCH_THREADS``
    ``torch.set_num_threads`` for the training process (default: leave torch's default).
``BENCH_LOADER``
    ``memory`` (default): read the HDF5 files into a ``MatrixBatchGenerator``;
    ``h5``: stream the training file with ``H5pyBatchGenerator``.
``BENCH_LOCKSTEP``
    A folder: after every epoch (training, validation), ``Model.end_epoch`` writes
    ``cli_<epoch>`` there and waits for ``go_<epoch>``, so the benchmark's own loop can train an
    epoch in between; the seconds waited are appended to ``cli_waits``. The wait is outside
    ``train_seconds``.
"""
import os
import time

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


def lockstep(epoch):
    """Hand over to the benchmark after ``epoch`` and wait for it (``BENCH_LOCKSTEP``)."""
    folder = os.environ.get('BENCH_LOCKSTEP')
    if not folder:
        return
    tick = time.perf_counter()
    with open(os.path.join(folder, f'cli_{epoch}'), 'w'):
        pass
    go = os.path.join(folder, f'go_{epoch}')
    while not os.path.exists(go):
        if time.perf_counter() - tick > 600:
            raise RuntimeError(f'BENCH_LOCKSTEP: no {go} after 600 s')
        time.sleep(0.001)
    with open(os.path.join(folder, 'cli_waits'), 'a') as handle:
        handle.write(f'{time.perf_counter() - tick}\n')


class Model(base_model.ClassificationModel):
    def init_model(self):
        network = build_network(self.config)
        super().init_model(network, build_optimizer(network, self.config))
        self.epochs_done = 0
        set_threads()  # last word on the thread count, whatever the CLI set before

    def train_epoch(self, generator, progress=None):
        # CPU seconds of the training pass, for the benchmark (history.csv: train_cpu_seconds)
        start = time.process_time()
        values = super().train_epoch(generator, progress)
        return {**values, 'cpu_seconds': time.process_time() - start}

    def train_metrics(self, y_true, y_pred):
        # the thread count lands in history.csv (train_threads), for the benchmark to check
        return {**super().train_metrics(y_true, y_pred), 'threads': torch.get_num_threads()}

    def end_epoch(self, result):
        self.epochs_done += 1
        lockstep(self.epochs_done)
        return False
