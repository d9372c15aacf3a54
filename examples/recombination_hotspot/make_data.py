"""Write ``observed.npy``: simulated stand-ins for real data, for ``-p`` to predict.

    python3 make_data.py --out data [--n 20] [--seed 1]

``observed.npy``: float32, shape (n, 198, 24, 2), as simulate.py encodes a region;
``observed_labels.npy``: int64, shape (n,), 1 where the region has a hotspot (for checking the
predictions; real data has none).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from dlutil.extras import MissingExtraError  # noqa: E402 (the checkout, installed or not)

try:
    from simulate import simulate_hotspot
except MissingExtraError as error:  # msprime: say what to install, no traceback
    sys.exit(f'error: {error}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data')
    parser.add_argument('--n', type=int, default=20)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(args.seed)
    examples = [simulate_hotspot() for _ in range(args.n)]
    np.save(os.path.join(args.out, 'observed.npy'), np.stack([x for x, _ in examples]))
    np.save(os.path.join(args.out, 'observed_labels.npy'),
            np.array([int(y.argmax()) for _, y in examples]))
    print(f'wrote {args.n} regions to {args.out}/observed.npy, their labels to '
          f'observed_labels.npy')


if __name__ == '__main__':
    main()
