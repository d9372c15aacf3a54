"""def.py of the function_regressor example: an MLP that learns y = sin(x0) + x1·x2.

    VAL_RATIO=0.25 python3 ../../main.py -f reg_model.py -d data -r results -y -e -p X_pred.csv

Data: comma-separated files with one header line, written by make_data.py:
``data/X_train.csv`` and ``data/Y_train.csv`` (split here into training and validation),
``data/X_test.csv`` and ``data/Y_test.csv``, and input-only files to predict (``X_pred.csv``).

Environment variables:
    VAL_RATIO  fraction of X_train/Y_train held out for validation (default 0.2)
"""
import os
import random

import numpy as np
import torch
from torch import nn

from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator


def val_ratio():
    value = os.environ.get('VAL_RATIO', '0.2')
    try:
        ratio = float(value)
    except ValueError:
        ratio = None
    if ratio is None or not 0 < ratio < 1:
        raise ValueError(f'VAL_RATIO must be a number strictly between 0 and 1, got {value!r}')
    return ratio


def load_csv(path):
    """A CSV with one header line → float32, shape=(n, columns), or (n,) for one column."""
    array = np.loadtxt(path, delimiter=',', skiprows=1, dtype=np.float32, ndmin=2)
    return array[:, 0] if array.shape[1] == 1 else array


def get_train_generator(data_dir, batch_size):
    X = load_csv(os.path.join(data_dir, 'X_train.csv'))
    Y = load_csv(os.path.join(data_dir, 'Y_train.csv'))
    # (train, val): the split is fixed, so every trial validates on the same rows
    return MatrixBatchGenerator.get_train_val_generator(X, Y, val_ratio(), batch_size)


def get_test_generator(data_dir):
    X = load_csv(os.path.join(data_dir, 'X_test.csv'))
    Y = load_csv(os.path.join(data_dir, 'Y_test.csv'))
    return MatrixBatchGenerator(X, Y)


def get_pred_generator(pred_path):
    return MatrixBatchGenerator(load_csv(pred_path))


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` ReLU units; x shape=(n, inputs) → shape=(n,)."""

    def __init__(self, inputs, width, depth):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Linear(inputs if i == 0 else width, width), nn.ReLU()]
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x).squeeze(1)  # one target: shape (n,), like the labels


class Model(RegressionModel):
    def init_model(self):
        config = self.config
        network = MLP(inputs=3, width=config['width'], depth=config['depth'])
        optimizer = torch.optim.Adam(network.parameters(), lr=config['lr'],
                                     weight_decay=config['weight_decay'])
        super(Model, self).init_model(network, optimizer)


def get_config():
    return {
        'width': random.choice([16, 32, 64, 128]),
        'depth': random.choice([1, 2, 3]),
        'lr': random.choice([1e-3, 3e-3, 1e-2]),
        'weight_decay': random.choice([0.0, 1e-5, 1e-4]),
    }
