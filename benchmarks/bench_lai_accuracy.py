"""Local-ancestry accuracy and wall time on the example's stdpopsim data, beside gnomix.

On one data folder made by ``examples/local_ancestry/simulate.py`` (stdpopsim's
AmericanAdmixture_4B18 on 10 Mb of chr22, 40 reference individuals per population, 20
admixed ones; ``--switch-error-rate`` adds phasing switch errors to the admixed ones), in one
run, one method after the other:

1. the **window network**, one configuration trained by the CLI through the example's
   ``def.py`` (``LAI_CONFIG``; ``-ep E --eta E+1`` so that Hyperband trains just it; the epoch
   of lowest validation loss kept): ``-y`` timed as training, ``-e`` on ``test.h5`` timed as
   inference. At the example's budget (``--epochs``, 9 epochs of 1024 founders) with ``-bs 16``
   and ``-bs 128``, and to convergence (``--converged`` epochs, early stopping after 10);
2. deepLAI's **SegNet**, with the allele-likelihood encoding and with one-hot alleles, for
   ``--segnet-epochs`` epochs;
3. the **windowed allele-frequency naive Bayes**, fitted on the whole panel, best window of
   ``--windows`` (chosen on the test set, which favours it);
4. **gnomix** (``benchmarks/lai_gnomix.py``), when ``--gnomix`` names a clone of its
   repository, calling test.h5's haplotypes written as a VCF.

Prints a JSON line per method: per-variant accuracy on test.h5, wall seconds and CPU seconds
(user + system, this process and its children: what the method cost, whatever else ran). gnomix
runs first and again after the window network's two default runs, so that the time comparison
is made under the same load.

    python benchmarks/bench_lai_accuracy.py --data DATA --work WORK [--gnomix CLONE --python PY]
"""
import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXAMPLE = os.path.join(REPO, 'examples', 'local_ancestry')
sys.path.insert(0, REPO)
WINDOW = {'network': 'window', 'window_cM': 0.1, 'smoother_cM': 5.0, 'hidden': 0,
          'input_dropout': 0.0, 'learning_rate': 0.01}
SEGNET = {'network': 'segnet', 'width': 8, 'n_filters': 8, 'pool_size': 4, 'n_blocks': 4,
          'input_pool': 16, 'learning_rate': 0.01}


def cli(data, results, config, epochs, batch_size, threads, cache):
    """Train ``config`` alone for up to ``epochs`` epochs (-y), then test it (-e)."""
    env = dict(os.environ, LAI_CONFIG=json.dumps(config), DLUTIL_CACHE=cache)
    base = [sys.executable, os.path.join(REPO, 'main.py'), '-f',
            os.path.join(EXAMPLE, 'def.py'), '-d', data, '-r', results, '--seed', '0',
            '--threads', str(threads)]
    seconds = {}
    for mode, extra in (('train', ['-y', '-ep', str(epochs), '--eta', str(epochs + 1), '-bs',
                                   str(batch_size), '-c']), ('test', ['-e'])):
        start = time.perf_counter()
        out = subprocess.run(base + extra, env=env, capture_output=True, text=True)
        seconds[mode] = round(time.perf_counter() - start, 1)
        if out.returncode:
            sys.exit(f'{" ".join(base + extra)} failed:\n{out.stderr[-3000:]}')
    with open(os.path.join(results, 'test_result.json')) as handle:
        accuracy = json.load(handle)['accuracy']
    history = list(csv.DictReader(open(os.path.join(results, 'trials', 't0000',
                                                    'history.csv'))))
    return {'accuracy': round(accuracy, 4), 'train_seconds': seconds['train'],
            'test_seconds': seconds['test'], 'epochs': len(history),
            'val_accuracy': [round(float(r['val_accuracy']), 4) for r in history]}


def naive_bayes(data, windows, cache):
    os.environ['DLUTIL_CACHE'] = cache
    from dlutil.genotypes.generator import GenotypeBatchGenerator
    from dlutil.genotypes.cache import converted
    from dlutil.genotypes.h5 import IGNORE
    from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
    start = time.perf_counter()
    panel = converted(os.path.join(data, 'reference.vcf.gz'),
                      os.path.join(data, 'reference.samples.tsv'), kind='reference')
    reference = GenotypeBatchGenerator(panel)
    x, y = reference.read_all()
    model = WindowedNaiveBayes(len(reference.ancestries)).update(x, y[:, 0])
    test = GenotypeBatchGenerator(os.path.join(data, 'test.h5'), positions=reference.info.positions,
                                  ancestries=reference.ancestries)
    tx, ty = test.read_all()
    keep = ty != IGNORE
    scores = {w: float(np.mean(model.predict(tx, w)[keep] == ty[keep])) for w in windows}
    best = max(scores, key=scores.get)
    return {'accuracy': round(scores[best], 4), 'window': best,
            'by_window': {w: round(v, 4) for w, v in scores.items()},
            'seconds': round(time.perf_counter() - start, 1)}


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children: unlike wall
    time, not lengthened while other work holds the cores or the process is stopped."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True)
    parser.add_argument('--work', required=True)
    parser.add_argument('--epochs', type=int, default=9)
    parser.add_argument('--converged', type=int, default=60)
    parser.add_argument('--segnet-epochs', type=int, default=6)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--windows', type=int, nargs='+', default=[200, 400, 800, 1600, 3200])
    parser.add_argument('--gnomix', help='a clone of github.com/AI-sandbox/gnomix')
    parser.add_argument('--python', default=sys.executable, help="gnomix's interpreter")
    parser.add_argument('--only', nargs='*', help='methods to run (default: all)')
    args = parser.parse_args()
    cache = os.path.join(os.path.abspath(args.work), 'cache')
    runs = {}
    if args.gnomix:  # first, then ours back to back, then gnomix again: under the same load
        import lai_gnomix

        def gnomix(r):
            return lai_gnomix.run(args.data, r, args.gnomix, args.python,
                                  2.1057233894035443e-08, args.threads, 94305)
        runs['gnomix'] = gnomix
    runs.update({
        'window_default_bs16': lambda r: cli(args.data, r, WINDOW, args.epochs, 16,
                                             args.threads, cache),
        'window_default_bs128': lambda r: cli(args.data, r, WINDOW, args.epochs, 128,
                                              args.threads, cache),
    })
    if args.gnomix:
        runs['gnomix_again'] = gnomix
    runs.update({
        'window_converged': lambda r: cli(args.data, r, WINDOW, args.converged, 16,
                                          args.threads, cache),
        'segnet_likelihood': lambda r: cli(args.data, r, dict(SEGNET, encoding='likelihood'),
                                           args.segnet_epochs, 16, args.threads, cache),
        'segnet_one_hot': lambda r: cli(args.data, r, dict(SEGNET, encoding='one_hot'),
                                        args.segnet_epochs, 16, args.threads, cache),
        'naive_bayes': lambda r: naive_bayes(args.data, args.windows, cache),
    })
    for name, run in runs.items():
        if args.only and name not in args.only:
            continue
        cpu = cpu_seconds()
        result = run(os.path.join(args.work, name))
        result['cpu_seconds'] = round(cpu_seconds() - cpu, 1)
        print(json.dumps(dict(method=name, data=args.data, **result)), flush=True)


if __name__ == '__main__':
    main()
