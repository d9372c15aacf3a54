"""Parallel trials: a short search, with --workers 1 and 2.

Runs the real CLI on benchmarks/defs/learning_curve.py, once with one worker and once with two,
and prints the wall times (start-up included), the speed-up (target ≥ 1.6 on 2 cores) and whether
the two results are identical. Each epoch does ``--busy`` CPU seconds of work (default: a search
of about 15 s of CPU work in all, where workers that import torch afresh cost most) and/or sleeps
``--sleep`` seconds, as an epoch waiting on a GPU or on I/O would.

    python benchmarks/bench_workers.py [--epoch 27] [--busy 0.045] [--sleep 0]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEF = os.path.join(HERE, 'defs', 'learning_curve.py')


def outputs(result):
    """search.csv, best.json and every history without its timing column."""
    import csv
    out = {'search': open(os.path.join(result, 'search.csv')).read(),
           'best': json.load(open(os.path.join(result, 'best.json')))}
    for trial in sorted(os.listdir(os.path.join(result, 'trials'))):
        with open(os.path.join(result, 'trials', trial, 'history.csv')) as handle:
            out[trial] = [{k: v for k, v in row.items() if k != 'train_seconds'}
                          for row in csv.DictReader(handle)]
    return out


def _ready():
    import torch  # noqa: F401  (what a worker needs before it trains)
    import base_model  # noqa: F401
    return True


def worker_start_seconds():
    """Seconds from starting a one-worker pool to its first result: spawn vs the forkserver
    (launched beforehand, as the command line does while it imports torch itself)."""
    import concurrent.futures
    import multiprocessing
    sys.path.insert(0, ROOT)
    from dlutil import processes
    processes.start()
    out = {}
    for name, context in (('spawn', multiprocessing.get_context('spawn')),
                          ('forkserver', processes.worker_context())):
        if name == 'forkserver':  # let the server finish its own imports first
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                pool.submit(_ready).result()
        start = time.perf_counter()
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            pool.submit(_ready).result()
        out[name] = time.perf_counter() - start
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epoch', type=int, default=27, help="Hyperband's R")
    parser.add_argument('--busy', type=float, default=0.045, help='CPU seconds of work per epoch')
    parser.add_argument('--sleep', type=float, default=0.0, help='seconds of waiting per epoch')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, 'data'))
        env = dict(os.environ, SLEEP=str(args.sleep), BUSY=str(args.busy))
        times = {}
        for workers in (1, 2):
            result = os.path.join(tmp, f'workers{workers}')
            start = time.perf_counter()
            subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f', DEF, '-d',
                            os.path.join(tmp, 'data'), '-r', result, '-y', '-ep',
                            str(args.epoch), '--seed', '0', '-c', '--threads', '1',
                            '--workers', str(workers)],
                           check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            times[workers] = time.perf_counter() - start
        same = outputs(os.path.join(tmp, 'workers1')) == outputs(os.path.join(tmp, 'workers2'))
        epochs = sum(len(v) for k, v in outputs(os.path.join(tmp, 'workers1')).items()
                     if k.startswith('t'))
    print(f'search: R={args.epoch}, eta=3, {epochs} trained epochs of {args.busy} CPU s of work '
          f'and {args.sleep} s of waiting (about {epochs * (args.busy + args.sleep):.0f} s)')
    print(f'--workers 1: {times[1]:.1f} s')
    print(f'--workers 2: {times[2]:.1f} s')
    print(f'speed-up: {times[1] / times[2]:.2f}x (target >= 1.6)')
    print(f'identical results: {same}')
    starts = worker_start_seconds()
    print(f'first result of a fresh worker: spawn {starts["spawn"]:.2f} s, forkserver '
          f'{starts["forkserver"]:.2f} s')


if __name__ == '__main__':
    main()
