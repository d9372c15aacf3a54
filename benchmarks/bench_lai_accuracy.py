"""Local ancestry accuracy on the example's simulated admixed test set, against a simple baseline.

In one run, on the same data (``examples/local_ancestry/simulate.py``: msprime, three
populations with split times, 40 reference individuals each, 20 individuals admixed 30
generations ago, 10 Mb):

1. the **window network** (``WindowLAI`` with its defaults), one configuration trained by the
   CLI through the example's ``def.py`` (``LAI_CONFIG``, ``-ep``/``--eta`` so that Hyperband
   trains just it, early stopping keeping the best epoch), tested with ``-e`` on ``test.h5``;
2. deepLAI's **SegNet** the same way (a CPU-sized configuration: 4 filters in the first block,
   width 16, pool 4, 5 blocks, Adam 1e-3 for ``--segnet-epochs`` epochs);
3. the **windowed allele-frequency naive Bayes** baseline, fitted on the whole reference panel,
   at every window of ``--windows`` variants; its best window is reported (chosen on the test
   set itself, which favours the baseline).

Prints the per-variant accuracy of each.

    python benchmarks/bench_lai_accuracy.py              # 3-7 minutes on 2 cores
    python benchmarks/bench_lai_accuracy.py --data DIR   # data already simulated there
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXAMPLE = os.path.join(REPO, 'examples', 'local_ancestry')
sys.path.insert(0, REPO)
WINDOW = {'network': 'window', 'window': 100, 'smoother_width': 49, 'smoother_channels': 64,
          'input_dropout': 0.2, 'learning_rate': 3e-3, 'patience': 20}
SEGNET = {'network': 'segnet', 'width': 16, 'n_filters': 4, 'pool_size': 4, 'n_blocks': 5,
          'learning_rate': 1e-3}


def cli(data, results, config, epochs, threads):
    """Train ``config`` alone for up to ``epochs`` epochs and test it; returns test_result."""
    env = dict(os.environ, LAI_CONFIG=json.dumps(config))
    command = [sys.executable, os.path.join(REPO, 'main.py'), '-f',
               os.path.join(EXAMPLE, 'def.py'), '-d', data, '-r', results, '-y', '-e',
               '-ep', str(epochs), '--eta', str(epochs + 1), '-bs', '16', '--seed', '0',
               '--threads', str(threads), '-c']
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f'{" ".join(command)} failed:\n{out.stderr[-3000:]}')
    with open(os.path.join(results, 'test_result.json')) as handle:
        return json.load(handle)


def naive_bayes(data, windows):
    from batch_generator import GenotypeBatchGenerator
    from dlutil.genotypes.h5 import IGNORE
    from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
    reference = GenotypeBatchGenerator(os.path.join(data, 'reference.h5'))
    x, y = reference.read_all()
    info = reference.info
    test = GenotypeBatchGenerator(os.path.join(data, 'test.h5'), positions=info.positions,
                                  ancestries=info.ancestries)
    tx, ty = test.read_all()
    model = WindowedNaiveBayes(len(info.ancestries)).update(x, y[:, 0])
    keep = ty != IGNORE
    return {w: float(np.mean(model.predict(tx, w)[keep] == ty[keep])) for w in windows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', help='a folder simulate.py filled (default: simulate anew)')
    parser.add_argument('--window-epochs', type=int, default=150)
    parser.add_argument('--segnet-epochs', type=int, default=4)
    parser.add_argument('--windows', default='10,25,50,100,200,400,800,1600,3200',
                        help='naive Bayes windows, in variants')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    windows = [int(w) for w in args.windows.split(',')]
    with tempfile.TemporaryDirectory() as folder:
        data = args.data or os.path.join(folder, 'data')
        if not args.data:
            subprocess.run([sys.executable, os.path.join(EXAMPLE, 'simulate.py'), '--out', data],
                           check=True)
        if not os.path.isfile(os.path.join(data, 'reference.h5')):
            from dlutil.genotypes.vcf import vcf_to_h5
            vcf_to_h5(os.path.join(data, 'reference.vcf.gz'), os.path.join(data, 'reference.h5'),
                      os.path.join(data, 'reference.samples.tsv'))
        start = time.perf_counter()
        window = cli(data, os.path.join(folder, 'window'), WINDOW, args.window_epochs,
                     args.threads)
        window_s = time.perf_counter() - start
        start = time.perf_counter()
        segnet = cli(data, os.path.join(folder, 'segnet'), SEGNET, args.segnet_epochs,
                     args.threads)
        segnet_s = time.perf_counter() - start
        nb = naive_bayes(data, windows)
    best = max(nb, key=nb.get)
    print('per-variant accuracy on the simulated admixed test set (test.h5):')
    print(f'  window network {WINDOW}, up to {args.window_epochs} epochs: '
          f'{window["accuracy"]:.4f} ({window_s:.0f} s)')
    print(f'  SegNet {SEGNET}, {args.segnet_epochs} epochs: {segnet["accuracy"]:.4f} '
          f'({segnet_s:.0f} s)')
    print(f'  naive Bayes, best window {best} variants: {nb[best]:.4f}  (all windows: '
          + ', '.join(f'{w}: {a:.3f}' for w, a in nb.items()) + ')')
    print(f'  window network - naive Bayes: {window["accuracy"] - nb[best]:+.4f}')
    shares = {k: v for k, v in window.items() if k.startswith(('precision', 'recall'))}
    print('  window network per ancestry: ' + ', '.join(f'{k} {v:.3f}'
                                                      for k, v in shares.items()))
    truth, called = call_shares(segnet)
    print('  SegNet calls per ancestry: ' + ', '.join(f'{a} {called[a]:.3f}' for a in called)
          + ' (test set: ' + ', '.join(f'{a} {truth[a]:.3f}' for a in truth)
          + f'; always calling the most frequent gives {max(truth.values()):.4f})')


def call_shares(result):
    """Shares of the labelled variants per true ancestry and per called ancestry, from the
    confusion matrix of a test result."""
    cells = {tuple(k.split('_')[1:]): v for k, v in result.items()
             if k.startswith('confusion_')}
    names = sorted({a for a, _ in cells})
    return ({a: sum(cells[a, b] for b in names) for a in names},
            {b: sum(cells[a, b] for a in names) for b in names})


if __name__ == '__main__':
    main()
