"""A synthetic objective with learning-curve structure, for studying the search itself.

The reward of a configuration rises with epochs towards a ceiling that the configuration sets:

    reward(epoch) = ceiling(config) − gap(config)·exp(−epoch / tau(config)) + noise

with the known optimum ceiling = 0 at lr = 10^−2.5, momentum = 0.9, width = 'wide', dropout = 0.2,
weight_decay = 10^−4. The fastest
learners (lr near 10^−2) are not the ones that end best, as in real training, so rankings after
few epochs are informative but imperfect. No network is trained; an epoch costs ``SLEEP`` seconds of waiting (environment
variable, default 0) and ``BUSY`` seconds of CPU time, which makes the def useful for measuring
parallel workers.

Environment: ``SLEEP`` (seconds per epoch), ``BUSY`` (CPU seconds per epoch), ``NOISE`` (standard deviation of the noise, default
0.02).
"""
import math
import os
import time

import numpy as np
import torch
from hyperopt import hp

from base_model import BaseModel
from batch_generator import MatrixBatchGenerator

SLEEP = float(os.environ.get('SLEEP', '0'))
BUSY = float(os.environ.get('BUSY', '0'))
NOISE = float(os.environ.get('NOISE', '0.02'))


def get_train_generator(data_dir, batch_size):
    one = MatrixBatchGenerator(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), 1)
    return one, one


def get_space():
    return {'lr': hp.loguniform('lr', math.log(1e-5), math.log(1.0)),
            'momentum': hp.uniform('momentum', 0.0, 0.99),
            'width': hp.choice('width', ['narrow', 'medium', 'wide']),
            'dropout': hp.uniform('dropout', 0.0, 0.8),
            'weight_decay': hp.loguniform('weight_decay', math.log(1e-7), math.log(1e-1))}


def ceiling(config):
    """The reward this configuration converges to; 0 at the optimum."""
    width = {'narrow': 0.6, 'medium': 0.25, 'wide': 0.0}[config['width']]
    return -((math.log10(config['lr']) + 2.5) ** 2 / 4 + (config['momentum'] - 0.9) ** 2 + width
             + (config['dropout'] - 0.2) ** 2 + (math.log10(config['weight_decay']) + 4) ** 2 / 16)


class Model(BaseModel):
    def init_model(self):
        network = torch.nn.Linear(1, 1)
        super().init_model(network, lambda y, p: (p - y).pow(2).mean(),
                           torch.optim.SGD(network.parameters(), lr=0.0))
        self.epochs_done = 0

    def run_epoch(self, train_generator, val_generator, batch_size=None, progress=None):
        if SLEEP:
            time.sleep(SLEEP)
        if BUSY:  # a fixed amount of CPU work, as a small CPU epoch is
            end = time.process_time() + BUSY
            while time.process_time() < end:
                sum(range(20000))  # a clock read is a system call: not after every step
        self.epochs_done += 1
        lr = self.config['lr']
        tau = 1.0 + 1.5 * abs(math.log10(lr) + 2.0)  # rates far from 1e-2 learn slowly
        gap = 1.0 + 0.5 * (lr > 0.05)                # large rates start far off
        noise = NOISE * float(torch.randn(()))              # torch's RNG: checkpointed per trial
        reward = ceiling(self.config) - gap * math.exp(-self.epochs_done / tau) + noise
        return {'train_seconds': SLEEP, 'train_loss': -reward, 'val_loss': -reward,
                'hyperband_reward': reward}

    def extra_state(self):
        return {'epochs_done': self.epochs_done}

    def load_extra_state(self, state):
        self.epochs_done = state['epochs_done']

    def train_metrics(self, y_true, y_pred):
        return {}

    def eval_metrics(self, y_true, y_pred):
        return {}

    def get_hyperband_reward(self, result):
        return result['hyperband_reward']
