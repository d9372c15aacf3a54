"""def.py of the hotspot example: a Hyperband search over φ, g and h on simulations on the fly.

    python3 ../../main.py -f def.py -d data -r results -y -e -p observed.npy -ep 3 -bs 50

Training batches come from msprime simulations made while the network trains
(``batch_generator.SimulationBatchGenerator``, see simulate.py): every epoch is
``BATCHES_PER_EPOCH`` batches never seen before, and each trial of the search draws its own
stream (seeded by the trial). Validation is on ``VAL_SIZE`` simulations drawn once, the same for
every trial; ``-e`` tests on ``TEST_SIZE`` fresh simulations (a stream no trial trained or
validated on). ``--data`` holds only what ``-p`` predicts: arrays of shape (n, 198, 24, 2) saved
with ``numpy.save`` (make_data.py writes ``observed.npy``, simulated stand-ins for real data).

Environment variables (defaults in brackets): BATCHES_PER_EPOCH [10], SIM_PROCESSES [1]
(simulation processes per trial process), VAL_SIZE [200], TEST_SIZE [500].
"""
import os
import random

import numpy as np

from batch_generator import MatrixBatchGenerator, SimulationBatchGenerator
from models.exchangeable import ExchangeableClassifier
from simulate import INPUT_SHAPE, OUTPUT_SHAPE, simulate_hotspot


def setting(name, default):
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < (0 if name == 'SIM_PROCESSES' else 1):
        raise ValueError(f'{name}={value!r}: expected a positive integer')
    return int(value)


def simulations(batch_size=50, check=True):
    return SimulationBatchGenerator(simulate_hotspot, INPUT_SHAPE, OUTPUT_SHAPE, batch_size,
                                    batches_per_epoch=setting('BATCHES_PER_EPOCH', 10),
                                    processes=setting('SIM_PROCESSES', 1),
                                    queue_capacity=4 * batch_size, seed=0, check=check)


def get_train_generator(data_dir, batch_size):
    train = simulations(batch_size)
    return train, train.validation_generator(setting('VAL_SIZE', 200))


def get_test_generator(data_dir):
    with simulations(check=False) as fresh:
        return fresh.test_generator(setting('TEST_SIZE', 500))


def get_pred_generator(pred_path):
    X = np.load(pred_path)
    if X.ndim != 4 or X.shape[1:] != INPUT_SHAPE:
        raise ValueError(f'{pred_path}: shape {X.shape}, but this network takes arrays of shape '
                         f'(n, {", ".join(map(str, INPUT_SHAPE))}): haplotypes × SNPs × '
                         f'(minor allele, scaled distance to the next SNP)')
    return MatrixBatchGenerator(X.astype(np.float32))


def get_config():
    """φ, g and h around the seed's network (φ conv(5, 32), conv(5, 64); g top_k 1;
    h fc 128, fc 128, softmax), and Adam's learning rate."""
    return {
        'phi_net': random.choice([[('conv', 5, 32), ('conv', 5, 64)],
                                  [('conv', 5, 32)], [('conv', 3, 16), ('conv', 3, 32)]]),
        'g': random.choice([('top_k', 1), ('top_k', 3), ('max',), ('moments', 1, 2)]),
        'h_net': random.choice([[('fc', 128), ('fc', 128), ('softmax',)],
                                [('fc', 64), ('softmax',)]]),
        'lr': random.choice([3e-4, 1e-3, 3e-3]),
    }


class Model(ExchangeableClassifier):
    input_shape, output_shape = INPUT_SHAPE, OUTPUT_SHAPE
