"""def.py of the hotspot example: a Hyperband search over φ, g and h on simulations on the fly.

    python3 ../../main.py -f def.py -d data -r results -y -e -p observed.npy -ep 3 -bs 50

Training batches come from msprime simulations made while the network trains
(``batch_generator.SimulationBatchGenerator``, see simulate.py): every epoch is
``BATCHES_PER_EPOCH`` batches never seen before, and each trial of the search draws its own
stream (seeded by the trial). Validation is on ``VAL_SIZE`` simulations drawn once, the same for
every trial; ``-e`` tests on ``TEST_SIZE`` fresh simulations (a stream no trial trained or
validated on). ``--data`` holds only what ``-p`` predicts: arrays of shape (n, 198, 24, 2) saved
with ``numpy.save`` (make_data.py writes ``observed.npy``, simulated stand-ins for real data).

Environment variables (defaults in brackets): BATCHES_PER_EPOCH [5], SIM_PROCESSES [1]
(simulation processes per trial process), VAL_SIZE [100], TEST_SIZE [200]. Small defaults, for
a quick demonstration; a real search wants BATCHES_PER_EPOCH=100, VAL_SIZE=1000 and more.
"""
import os
import random

import numpy as np

from batch_generator import MatrixBatchGenerator, SimulationBatchGenerator
from models.exchangeable import ExchangeableClassifier
from simulate import INPUT_SHAPE, OUTPUT_SHAPE, simulate_hotspot


def setting(name, value, low=1):
    if not value.isdigit() or int(value) < low:
        raise ValueError(f'{name}={value!r}: expected an integer >= {low}')
    return int(value)


# read literally, so that a search records them and refuses to continue with other values
BATCHES_PER_EPOCH = setting('BATCHES_PER_EPOCH', os.environ.get('BATCHES_PER_EPOCH', '5'))
SIM_PROCESSES = setting('SIM_PROCESSES', os.environ.get('SIM_PROCESSES', '1'), low=0)
VAL_SIZE = setting('VAL_SIZE', os.environ.get('VAL_SIZE', '100'))
TEST_SIZE = setting('TEST_SIZE', os.environ.get('TEST_SIZE', '200'))


def simulations(batch_size=50, check=True):
    return SimulationBatchGenerator(simulate_hotspot, INPUT_SHAPE, OUTPUT_SHAPE, batch_size,
                                    batches_per_epoch=BATCHES_PER_EPOCH,
                                    processes=SIM_PROCESSES, queue_capacity=4 * batch_size,
                                    seed=0, check=check)


def get_train_generator(data_dir, batch_size):
    train = simulations(batch_size)
    return train, train.validation_generator(VAL_SIZE)


def get_test_generator(data_dir):
    with simulations(check=False) as fresh:
        return fresh.test_generator(TEST_SIZE)


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
