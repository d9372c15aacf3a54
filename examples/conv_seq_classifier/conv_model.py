"""def.py of the conv_seq_classifier example: a one-layer CNN that finds a motif in DNA.

    python3 ../../main.py -f conv_model.py -d data -r results -y -e -p 'test.h5*' -ep 20 -bs 100

Data: ``data/{train,valid,test}.h5`` written by embedH5.py, ``data`` one-hot DNA,
shape=(n, 4, 1, length), ``label`` 0/1, shape=(n,).

Environment variables:
    SEQ_LEN  sequence length the network is built for (default 101); the loaders check that the
             data matches it.
"""
import os
import random

import torch
from torch import nn

from base_model import ClassificationModel, ConvClassificationNetwork
from batch_generator import H5pyBatchGenerator
from constraints import MaxNormConstraint


def seq_len():
    value = os.environ.get('SEQ_LEN', '101')
    try:
        return int(value)
    except ValueError:
        raise ValueError(f'SEQ_LEN must be a whole number of bases, got {value!r}') from None


def _h5(pattern, batch_size=None, shuffle=False):
    generator = H5pyBatchGenerator(pattern, batch_size, shuffle=shuffle)
    expected = (4, 1, seq_len())
    if tuple(generator.x_shape) != expected:
        raise ValueError(f'{pattern}: "data" rows have shape {tuple(generator.x_shape)} but the '
                         f'network is built for {expected}; set SEQ_LEN={generator.x_shape[-1]} '
                         f'(e.g. SEQ_LEN={generator.x_shape[-1]} python3 ../../main.py ...)')
    return generator


def get_train_generator(data_dir, batch_size):
    return _h5(os.path.join(data_dir, 'train.h5*'), batch_size, shuffle=True)


def get_val_generator(data_dir):
    return _h5(os.path.join(data_dir, 'valid.h5*'))


def get_test_generator(data_dir):
    return _h5(os.path.join(data_dir, 'test.h5*'))


def get_pred_generator(pred_path):
    return _h5(pred_path)


class Model(ClassificationModel):
    """Conv2d (4 → filters, kernel (1, kernel_len)) → ReLU → max-pool over all positions →
    dropout → Linear → 2 logits: each filter learns a motif, the pool asks "is it anywhere?"."""

    def init_model(self):
        config = self.config
        width = seq_len() - config['kernel_len'] + 1  # positions after the 'valid' convolution
        if width < 1:
            raise ValueError(f'SEQ_LEN={seq_len()} is shorter than kernel_len '
                             f'{config["kernel_len"]}')
        features = nn.Sequential(
            nn.Conv2d(4, config['filters'], kernel_size=(1, config['kernel_len'])),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(1, width)),  # output (n, filters, 1, 1)
            nn.Dropout(config['dropout']),
        )
        flat = config['filters'] * 1 * 1  # the flattened (filters, 1, 1) of the pool
        classifier = nn.Linear(flat, 2)
        network = ConvClassificationNetwork(features, classifier)
        optimizer = torch.optim.Adam(network.parameters(), lr=config['lr'])
        constraints = [MaxNormConstraint(config['max_norm'], 'features.0')]
        super(Model, self).init_model(network, optimizer, constraints=constraints)


def get_config():
    return {
        'filters': random.choice([16, 32, 64]),
        'kernel_len': random.choice([8, 12, 16]),
        'dropout': random.choice([0.1, 0.25, 0.5]),
        'lr': random.choice([1e-3, 3e-3, 1e-2]),
        'max_norm': random.choice([1.0, 3.0, 5.0]),
    }
