"""TPE proposals against random sampling on an objective with a known optimum.

benchmarks/defs/learning_curve.py: the reward rises with epochs towards a ceiling set by the
configuration (optimum 0). For each seed, the same search budget (--trials, R, eta) runs once with
random sampling and once with --sampler tpe; the script prints the best reward each found (the
best rung evaluation, as best.json reports it) and the paired difference (tpe - random). Over the
seeds: wins, losses and ties, the exact two-sided sign test on wins vs losses, and the mean paired
difference with its 95 % t interval: TPE is better than random only where that interval lies
above 0.

    python benchmarks/bench_tpe.py [--seeds 30] [--trials 100] [--epoch 9]
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
    parser.add_argument('--seeds', type=int, default=30)
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
    summarise(rows, args)


def summarise(rows, args):
    """Wins, losses, ties; the sign test; the mean paired difference and its 95 % interval."""
    import numpy as np
    from scipy import stats
    diff = np.array([t - r for _, r, t in rows])
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    ties = len(diff) - wins - losses
    sign_p = stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
    mean = float(diff.mean())
    half = (float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
            if len(diff) > 1 else float('nan'))
    print(f'budget: --trials {args.trials}, R={args.epoch}, eta=3; optimum reward 0; '
          f'{len(rows)} seeds')
    print(f'mean best reward: random {np.mean([r for _, r, _ in rows]):.4f}, '
          f'tpe {np.mean([t for _, _, t in rows]):.4f}')
    print(f'tpe - random per seed: {wins} wins, {losses} losses, {ties} ties; sign test '
          f'p = {sign_p:.3f}')
    print(f'mean paired difference {mean:+.4f}, 95 % CI [{mean - half:+.4f}, {mean + half:+.4f}]'
          f': ' + ('TPE better' if mean - half > 0 else 'random better' if mean + half < 0
                   else 'no difference shown at this budget'))


if __name__ == '__main__':
    main_()
