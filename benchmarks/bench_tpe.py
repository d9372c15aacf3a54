"""TPE proposals against random sampling on an objective with a known optimum.

benchmarks/defs/learning_curve.py: the reward rises with epochs towards a ceiling set by the
configuration (optimum 0). For each seed, the same search budget (--trials, R, eta) runs once with
random sampling and once with --sampler tpe; the script prints the best reward each found (the
best rung evaluation, as best.json reports it), the means over seeds, and how often TPE won.

    python benchmarks/bench_tpe.py [--seeds 10] [--trials 100] [--epoch 9]
"""
import argparse
import io
import json
import os
import sys
import tempfile
from contextlib import redirect_stderr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from dlutil import cli as main  # noqa: E402  (the repository's CLI, run in this process to skip start-up costs)

DEF = os.path.join(HERE, 'defs', 'learning_curve.py')


def best_reward(tmp, sampler, seed, args):
    result = os.path.join(tmp, f'{sampler}-{seed}')
    with redirect_stderr(io.StringIO()):
        code = main.main(['-f', DEF, '-d', os.path.join(tmp, 'data'), '-r', result, '-y',
                          '-ep', str(args.epoch), '--trials', str(args.trials), '--seed',
                          str(seed), '-c', '--threads', '1', '--sampler', sampler])
    assert code == 0, f'{sampler} seed {seed} failed'
    with open(os.path.join(result, 'best.json')) as handle:
        return json.load(handle)['rung_reward']


def main_():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=10)
    parser.add_argument('--trials', type=int, default=100)
    parser.add_argument('--epoch', type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault('NOISE', '0.02')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, 'data'))
        for seed in range(args.seeds):
            rows.append((seed, best_reward(tmp, 'random', seed, args),
                         best_reward(tmp, 'tpe', seed, args)))
            print(f'seed {seed}: random {rows[-1][1]:.4f}  tpe {rows[-1][2]:.4f}', flush=True)
    mean = lambda values: sum(values) / len(values)
    random_mean, tpe_mean = mean([r for _, r, _ in rows]), mean([t for _, _, t in rows])
    wins = sum(t > r for _, r, t in rows)
    print(f'budget: --trials {args.trials}, R={args.epoch}, eta=3; optimum reward 0')
    print(f'mean best reward: random {random_mean:.4f}, tpe {tpe_mean:.4f}')
    print(f'tpe better on {wins} of {len(rows)} seeds; mean gap to the optimum: random '
          f'{-random_mean:.4f}, tpe {-tpe_mean:.4f}')


if __name__ == '__main__':
    main_()
