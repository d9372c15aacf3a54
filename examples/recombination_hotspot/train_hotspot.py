"""defiNETti's hotspot example through the seed's API: ``train()``, then ``test()`` on fresh
simulations.

    python3 train_hotspot.py --batches 400 --sim-processes 2     # from this folder

Trains the seed's network (φ: conv(5, 32), conv(5, 64); g: top_k 1; h: fc 128, fc 128, softmax)
on simulations made on the fly, batch size 50, and prints every ``--verbosity`` batches the loss
and accuracy of those batches. Each batch is new to the network when it is scored (it is scored
in the forward pass of the step that then trains on it), so that accuracy is an accuracy on
fresh simulations. At the end the saved network is tested with ``test()`` on ``--test`` more
fresh simulations (the test stream of the simulations: never trained on).

Writes to ``--out`` (default ``results/``): ``hotspot.pt`` (the network), ``summary.txt``
(``<batch> <loss> <accuracy>`` lines), ``train.log`` (simulation speed, time spent waiting for
simulations), ``test_predictions.txt`` (the posterior of each test example: P(no hotspot),
P(hotspot)).
"""
import argparse
import os
import sys
import time

import numpy as np

from batch_generator import SimulationBatchGenerator
from dlutil.extras import MissingExtraError
from dlutil.models.definetti import test, train

try:
    from simulate import INPUT_SHAPE, OUTPUT_SHAPE, simulate_hotspot
except MissingExtraError as error:  # msprime: say what to install, no traceback
    sys.exit(f'error: {error}')

NETWORK = {'phi_net': [('conv', 5, 32), ('conv', 5, 64)], 'g': ('top_k', 1),
           'h_net': [('fc', 128), ('fc', 128), ('softmax',)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batches', type=int, default=400, help='batches to train (default 400)')
    parser.add_argument('--verbosity', type=int, default=100, help='report every N batches')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--sim-processes', type=int, default=2, help='simulation processes')
    parser.add_argument('--threads', type=int, default=1, help='torch threads for training')
    parser.add_argument('--test', type=int, default=1000, help='fresh test simulations')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='results')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, 'hotspot')

    start = time.perf_counter()
    summary = train(INPUT_SHAPE, OUTPUT_SHAPE, simulate_hotspot, **NETWORK,
                    num_batches=args.batches, batch_size=args.batch_size,
                    verbosity=args.verbosity, training_threads=args.threads,
                    sim_threads=args.sim_processes, save_path=base,
                    training_summary=os.path.join(args.out, 'summary.txt'),
                    logfile=os.path.join(args.out, 'train.log'), seed=args.seed)
    trained = time.perf_counter() - start

    with SimulationBatchGenerator(simulate_hotspot, INPUT_SHAPE, OUTPUT_SHAPE,
                                  processes=args.sim_processes, seed=args.seed) as simulations:
        X, Y = simulations.sample(args.test, 'test')
    posterior = test(X, base, threads=args.threads)
    np.savetxt(os.path.join(args.out, 'test_predictions.txt'), posterior, fmt='%.6f')
    accuracy = float(np.mean(posterior.argmax(1) == Y.argmax(1)))

    print(f'\nhotspot example: batch size {args.batch_size}, {args.sim_processes} simulation '
          f'processes, {args.threads} torch threads, {trained:.0f} s of training')
    print('batches trained | loss (mean of the last batches) | accuracy on those fresh batches')
    for batches, loss, acc in summary:
        print(f'{int(batches):15d} | {loss:31.4f} | {acc:.3f}')
    print(f'test(): accuracy on {args.test} fresh test simulations after {args.batches} '
          f'batches: {accuracy:.3f}')


if __name__ == '__main__':
    main()
