"""defiNETti's Gaussian example: an exchangeable network regresses (μ, σ) from 100 draws.

    python3 run.py                      # from this folder (run.sh sets PYTHONPATH)

Trains with ``train()`` (l2 loss, a matmul head, simulations on the fly), then scores the saved
network with ``test()`` on fresh simulations against the classical estimators, the sample mean
and the sample standard deviation, and against the prior mean (what one guesses knowing nothing
of the data). Writes ``--out`` (default ``results/``): ``gaussian.pt``, ``summary.txt``,
``comparison.txt`` (the table printed at the end).
"""
import argparse
import os

import numpy as np

from dlutil.models.definetti import test, train
from simulate import INPUT_SHAPE, OUTPUT_SHAPE, PRIOR_MEAN, simulator_gaussian

NETWORK = {'phi_net': [('fc', 32)], 'g': ('moments', 1, 2),
           'h_net': [('fc', 32), ('matmul',)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batches', type=int, default=1000)
    parser.add_argument('--sim-processes', type=int, default=1)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--learning-rate', type=float, default=0.003)
    parser.add_argument('--test', type=int, default=2000, help='fresh test simulations')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default='results')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, 'gaussian')

    train(INPUT_SHAPE, OUTPUT_SHAPE, simulator_gaussian, **NETWORK, loss='l2', accuracy=None,
          num_batches=args.batches, batch_size=50, verbosity=max(1, args.batches // 10),
          training_threads=args.threads, sim_threads=args.sim_processes, save_path=base,
          training_summary=os.path.join(args.out, 'summary.txt'), seed=args.seed,
          learning_rate=args.learning_rate)

    rng = np.random.default_rng(args.seed + 1)   # fresh simulations, not the training stream
    mu, sigma = rng.beta(5, 10, args.test), rng.uniform(6, 10, args.test)
    data = rng.normal(mu[:, None, None], sigma[:, None, None], (args.test,) + INPUT_SHAPE)
    truth = np.stack([mu, sigma], axis=1)
    estimates = {
        'exchangeable network': test(data, base, threads=args.threads),
        'sample mean and std': np.stack([data.mean(axis=(1, 2)),
                                         data.std(axis=(1, 2), ddof=1)], axis=1),
        'prior mean': np.broadcast_to(PRIOR_MEAN, truth.shape),
    }
    lines = [f'mean squared error on {args.test} fresh simulations, after {args.batches} '
             f'batches of 50:', f'{"estimator":22s} {"mu":>9s} {"sigma":>9s}']
    for name, estimate in estimates.items():
        mse = np.mean((estimate - truth) ** 2, axis=0)
        lines.append(f'{name:22s} {mse[0]:9.4f} {mse[1]:9.4f}')
    text = '\n'.join(lines)
    print(text)
    with open(os.path.join(args.out, 'comparison.txt'), 'w') as handle:
        handle.write(text + '\n')


if __name__ == '__main__':
    main()
