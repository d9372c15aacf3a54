"""Write a synthetic regression data set: a known noisy function of three inputs.

    python3 make_data.py [--out data] [--seed 0] [--train 2000 --test 500 --pred 200]

    y = sin(x0) + x1 * x2 + noise,   x ~ Uniform(-2, 2)^3,   noise ~ Normal(0, --noise)

Writes comma-separated files, each with one header line (``x0,x1,x2`` or ``y``) and one row per
sample: ``OUT/X_train.csv``, ``OUT/Y_train.csv``, ``OUT/X_test.csv``, ``OUT/Y_test.csv`` and
``OUT/X_pred.csv`` (inputs only, for prediction).
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
N_INPUTS = 3


def target(X):
    """The noise-free function, X shape=(n, 3) → shape=(n,)."""
    return np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


def sample(n, noise, rng):
    """``(X, Y)``: inputs shape=(n, 3) and noisy targets shape=(n,)."""
    X = rng.uniform(-2.0, 2.0, size=(n, N_INPUTS))
    return X, target(X) + rng.normal(0.0, noise, size=n)


def write_csv(path, array, header):
    np.savetxt(path, array, delimiter=',', header=','.join(header), comments='', fmt='%.6f')


def make_dataset(out_dir, n_train=2000, n_test=500, n_pred=200, noise=0.1, seed=0):
    """Write the five CSV files into ``out_dir``."""
    for name, n in (('--train', n_train), ('--test', n_test), ('--pred', n_pred)):
        if n < 2:
            raise ValueError(f'{name} must be at least 2 samples, got {n}')
    if noise < 0:
        raise ValueError(f'--noise must be >= 0, got {noise}')
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns = [f'x{i}' for i in range(N_INPUTS)]
    for split, n in (('train', n_train), ('test', n_test)):
        X, Y = sample(n, noise, rng)
        write_csv(os.path.join(out_dir, f'X_{split}.csv'), X, columns)
        write_csv(os.path.join(out_dir, f'Y_{split}.csv'), Y, ['y'])
    X, _ = sample(n_pred, noise, rng)
    write_csv(os.path.join(out_dir, 'X_pred.csv'), X, columns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join(HERE, 'data'),
                        help='output folder (default: data/ beside this script)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train', type=int, default=2000, help='samples (default: 2000)')
    parser.add_argument('--test', type=int, default=500, help='samples (default: 500)')
    parser.add_argument('--pred', type=int, default=200, help='samples (default: 200)')
    parser.add_argument('--noise', type=float, default=0.1,
                        help='standard deviation of the noise (default: 0.1)')
    args = parser.parse_args(argv)
    try:
        make_dataset(args.out, args.train, args.test, args.pred, args.noise, args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(f'wrote {args.train}/{args.test}/{args.pred} train/test/pred samples to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
