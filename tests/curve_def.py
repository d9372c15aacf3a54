"""A def.py for tests of the search's own state: instant epochs with a known learning curve.

The reward of a configuration rises with its epochs towards ``-(rate - 0.5)^2``, plus noise
from torch's RNG (which checkpoints restore), shifted by the data: 0.01 × (the mean of ``x.npy``
− 1), nothing for the usual array of ones. Modes of ``get_config`` inject failures:
``nan`` diverges (a final failure); ``flaky`` raises while a file ``flaky`` lies beside the
def.py (a failure whose cause can go away).
"""
import math
import os
import random

import numpy as np
import torch

from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(path, batch_size):
    X = np.load(path)
    return MatrixBatchGenerator(X, X, batch_size)


def get_train_generator(data_dir, batch_size):
    path = os.path.join(data_dir, 'x.npy')
    return _load(path, batch_size), _load(path, batch_size)


def get_test_generator(data_dir):
    return _load(os.path.join(data_dir, 'x.npy'), 4)


def get_pred_generator(pred_path):
    return MatrixBatchGenerator(np.load(pred_path), None, 4)


def get_config():
    return {'rate': round(random.random(), 4),
            'mode': random.choice(['ok', 'ok', 'ok', 'nan', 'flaky'])}


class Model(RegressionModel):  # its reward: -val_loss
    def init_model(self):
        network = torch.nn.Linear(1, 1)
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.01))
        self.epochs_done = 0

    def run_epoch(self, train_generator, val_generator, batch_size=None, progress=None):
        if self.config['mode'] == 'flaky' and os.path.exists(os.path.join(HERE, 'flaky')):
            raise RuntimeError('the cluster\u2019s scratch disk is not mounted yet')
        self.epochs_done += 1
        ceiling = -(self.config['rate'] - 0.5) ** 2
        reward = ceiling - math.exp(-self.epochs_done / 2) + 0.05 * float(torch.randn(()))
        reward += 0.01 * (float(np.mean(train_generator.X)) - 1)
        if self.config['mode'] == 'nan' and self.epochs_done >= 2:
            reward = float('nan')
        return {'train_seconds': 0.0, 'train_loss': -reward, 'val_loss': -reward,
                'hyperband_reward': reward}

    def extra_state(self):
        return {'epochs_done': self.epochs_done}

    def load_extra_state(self, state):
        self.epochs_done = state['epochs_done']
