"""Fine-tuning a zoo Basset from a related task versus training it from scratch: epochs to a target.

The standard transfer-learning setting: pretrain on a large related task, fine-tune on a target
task with few rows. Simulated on random DNA of 168 bp (Basset's shortest input; at any length its
last pool sees only the first 168 bp):

- task A (pretraining, many rows): which of two motifs a sequence carries, a GATA site and an
  AP-1 site (none, GATA, AP-1, both: 4 classes in equal parts).
- task B (target, few rows): does it carry both? Negatives carry one of them or neither in equal
  parts, so a model must detect both motifs.

The model is the zoo's ``models.basset.BassetMultiClass`` (Basset's own 300, 200 and 200
filters), hidden layers of 64. Everything goes through the command line: task A is trained once
with ``--config``; then, per seed, task B with one configuration and seed three times: from
scratch; fine-tuned (``--init-from`` task A's results ``--init-layers`` the three convolution
blocks; the dense layers start fresh); and the same with those blocks frozen (``--freeze``).
Per run: the first epoch whose validation accuracy (``trials/t0000/history.csv``) reaches
``--target`` ("-" when not within ``--epochs``), and the best validation accuracy within the
budget.

    python benchmarks/bench_finetune.py                 # 3 seeds: 5 min on 2 quiet cores
    python benchmarks/bench_finetune.py --seeds 5 --rows 1000
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATA, AP1 = 'AGATAAGG', 'TGACTCAT'
LENGTH = 168
COPIES = 3  # of each motif a sequence carries
DEF = '''
import os
import models.basset
from batch_generator import H5pyBatchGenerator

def get_train_generator(data_dir, batch_size):
    return (H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True),
            H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5')))

def get_config():
    return {CONFIG}

Model = models.basset.BassetMultiClass
'''
CONFIG = {'n_classes': 2, 'seq_len': LENGTH, 'hidden': 64, 'dropout': 0.1, 'lr': 0.001,
          'early_stopping_patience': None}
CONV_BLOCKS = 'network.layer1,network.layer2,network.layer3'


def plant(letters, motif, rng):
    """Put ``motif`` (or its reverse complement) at a random place of the row ``letters``."""
    if rng.random() < 0.5:
        motif = motif[::-1].translate(str.maketrans('ACGT', 'TGCA'))
    start = rng.integers(0, LENGTH - len(motif) + 1)
    letters[start:start + len(motif)] = ['ACGT'.index(c) for c in motif]


def simulate(n, task, seed):
    """One-hot rows, shape=(n, 4, LENGTH), and labels of task ``'A'`` (0-3) or ``'B'`` (0/1)."""
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, 4, size=(n, LENGTH))
    if task == 'A':  # class = 1 × GATA + 2 × AP-1
        y = rng.integers(0, 4, size=n)
        carried = [[m for bit, m in ((1, GATA), (2, AP1)) if label & bit] for label in y]
    else:  # B: both motifs; a negative carries GATA, AP-1 or neither
        y = rng.integers(0, 2, size=n)
        negatives = rng.integers(0, 3, size=n)
        carried = [[GATA, AP1] if label else [[GATA], [AP1], []][k]
                   for label, k in zip(y, negatives)]
    for row, motifs in zip(letters, carried):
        for motif in motifs:
            for _ in range(COPIES):
                plant(row, motif, rng)
    x = (letters[:, None, :] == np.arange(4)[None, :, None]).astype(np.uint8)
    return x, y.astype(np.int64)


def write_task(folder, task, n_train, n_valid, seed):
    os.makedirs(folder, exist_ok=True)
    for name, n, offset in (('train', n_train, 0), ('valid', n_valid, 1)):
        x, y = simulate(n, task, seed * 10 + offset)
        with h5py.File(os.path.join(folder, f'{name}.h5'), 'w') as f:
            f.create_dataset('data', data=x)
            f.create_dataset('label', data=y)


def train(def_path, data, result, config, epochs, seed, threads, *extra):
    """Train one configuration with ``main.py --config``; its validation accuracy per epoch."""
    command = [sys.executable, os.path.join(ROOT, 'main.py'), '-f', def_path, '-d', data,
               '-r', result, '--config', json.dumps(config), '--epoch', str(epochs),
               '--seed', str(seed), '--threads', str(threads), '--batch-size', '64', '-c',
               '--keep-checkpoints', 'best', *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f'{" ".join(command)} failed:\n{done.stderr}')
    with open(os.path.join(result, 'trials', 't0000', 'history.csv')) as handle:
        return [float(row['val_accuracy']) for row in csv.DictReader(handle)]


def epochs_to(accuracy, target):
    return next((epoch for epoch, value in enumerate(accuracy, 1) if value >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--first-seed', type=int, default=0,
                        help='seeds first-seed… (training and task B data); task A: 100 + it')
    parser.add_argument('--pretrain-rows', type=int, default=20000, help='task A training rows')
    parser.add_argument('--pretrain-epochs', type=int, default=3)
    parser.add_argument('--rows', type=int, default=1500, help='task B training rows')
    parser.add_argument('--valid', type=int, default=2000, help='validation rows of each task')
    parser.add_argument('--epochs', type=int, default=8, help='the budget: epochs on task B')
    parser.add_argument('--target', type=float, default=0.9, help='validation accuracy')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        def_path = os.path.join(tmp, 'def.py')
        with open(def_path, 'w') as handle:
            handle.write(DEF.replace('{CONFIG}', repr(CONFIG)))
        write_task(os.path.join(tmp, 'A'), 'A', args.pretrain_rows, args.valid,
                   100 + args.first_seed)
        accuracy = train(def_path, os.path.join(tmp, 'A'), os.path.join(tmp, 'rA'),
                         {**CONFIG, 'n_classes': 4}, args.pretrain_epochs, 100 + args.first_seed,
                         args.threads)
        print(f'task A (which of {GATA}, {AP1}; 4 classes, {args.pretrain_rows} rows): '
              f'validation accuracy per epoch ' + ' '.join(f'{a:.3f}' for a in accuracy)
              + f' ({time.perf_counter() - start:.0f} s)')
        print(f'task B (both motifs; {args.rows} rows, {args.valid} validation rows): epochs to '
              f'validation accuracy {args.target} ("-": not within {args.epochs}), best accuracy '
              f'within {args.epochs} epochs')
        arms = {'scratch': (),
                'fine-tuned': ('--init-from', os.path.join(tmp, 'rA'),
                               '--init-layers', CONV_BLOCKS),
                'frozen': ('--init-from', os.path.join(tmp, 'rA'), '--init-layers', CONV_BLOCKS,
                           '--freeze')}
        found = {name: [] for name in arms}
        best = {name: [] for name in arms}
        print(f'{"seed":>4}  {"arm":<10}  {"epochs":>6}  {"best":>5}  accuracy per epoch')
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            data = os.path.join(tmp, f'B{seed}')
            write_task(data, 'B', args.rows, args.valid, 200 + seed)
            for name, extra in arms.items():
                accuracy = train(def_path, data, os.path.join(tmp, f'{name}{seed}'), CONFIG,
                                 args.epochs, seed, args.threads, *extra)
                found[name].append(epochs_to(accuracy, args.target))
                best[name].append(max(accuracy))
                print(f'{seed:>4}  {name:<10}  {found[name][-1] or "-":>6}  {best[name][-1]:.3f}  '
                      + ' '.join(f'{a:.3f}' for a in accuracy), flush=True)
        print(f'median over {args.seeds} seeds (not reached counted as {args.epochs + 1}):')
        for name in arms:
            reached = sum(v is not None for v in found[name])
            epochs = np.median([v or args.epochs + 1 for v in found[name]])
            print(f'  {name:<10}  epochs to {args.target}: {epochs:g} (reached in {reached}/'
                  f'{args.seeds}), best accuracy {np.median(best[name]):.3f}')
    print(f'{time.perf_counter() - start:.0f} s in all')


if __name__ == '__main__':
    main()
