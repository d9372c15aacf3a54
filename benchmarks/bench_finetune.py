"""Fine-tuning a zoo Basset from a related task versus training it from scratch: epochs to a target.

Two simulated tasks on random DNA (length 200, Basset's shortest is 168):

- task A: does the sequence carry motif A (a GATA site) anywhere, on either strand?
- task B: does it carry motif A *and* motif B (an AP-1 site)? Negatives carry one of them or
  neither, in equal parts, so a model must find both.

A Basset (``models.basset.BassetMultiClass``, hidden layers of 64) is trained on task A with
``--config``. Then, for each seed, task B is learnt twice with the same configuration and seed:
from scratch, and with ``--init-from`` task A's results and ``--init-layers`` the three
convolution blocks. The figure is the first epoch whose validation accuracy reaches ``--target``
(read from each run's ``trials/t0000/history.csv``), or "not reached" within ``--epochs``.

    python benchmarks/bench_finetune.py                  # 2 seeds, about 10 CPU-minutes
    python benchmarks/bench_finetune.py --seeds 3 --train 6000 --epochs 8
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
MOTIF_A, MOTIF_B = 'AGATAAGG', 'TGACTCAT'
LENGTH = 200
COPIES = 3  # of each motif a sequence carries: a signal a Basset finds in a few epochs
DEF = '''
import os
import models.basset
from batch_generator import H5pyBatchGenerator

def get_train_generator(data_dir, batch_size):
    return (H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True),
            H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5')))

def get_config():
    return {'n_classes': 2, 'seq_len': 200, 'hidden': 64, 'dropout': 0.1, 'lr': 0.0003}

class Model(models.basset.BassetMultiClass):
    pass
'''
CONFIG = {'n_classes': 2, 'seq_len': LENGTH, 'hidden': 64, 'dropout': 0.1, 'lr': 0.0003}
CONV_BLOCKS = 'network.layer1,network.layer2,network.layer3'


def plant(letters, motif, rng):
    """Put ``motif`` (or its reverse complement) at a random place of the row ``letters``."""
    if rng.random() < 0.5:
        motif = motif[::-1].translate(str.maketrans('ACGT', 'TGCA'))
    start = rng.integers(0, LENGTH - len(motif))
    letters[start:start + len(motif)] = ['ACGT'.index(c) for c in motif]


def simulate(n, task, seed):
    """One-hot rows, shape=(n, 4, LENGTH), and 0/1 labels of task ``'A'`` or ``'B'``."""
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, 4, size=(n, LENGTH))
    y = rng.integers(0, 2, size=n)
    for i in range(n):
        if task == 'A':
            carried = [MOTIF_A] if y[i] else []
        else:  # B: both motifs; a negative has A, B or neither
            carried = [MOTIF_A, MOTIF_B] if y[i] else [[MOTIF_A], [MOTIF_B], []][i % 3]
        for motif in carried:
            for _ in range(COPIES):
                plant(letters[i], motif, rng)
    x = (letters[:, None, :] == np.arange(4)[None, :, None]).astype(np.uint8)
    return x, y.astype(np.int64)


def write_task(folder, task, n_train, seed):
    os.makedirs(folder, exist_ok=True)
    for name, n, offset in (('train', n_train, 0), ('valid', max(300, n_train // 3), 1)):
        x, y = simulate(n, task, seed * 10 + offset)
        with h5py.File(os.path.join(folder, f'{name}.h5'), 'w') as f:
            f.create_dataset('data', data=x)
            f.create_dataset('label', data=y)


def train(def_path, data, result, epochs, seed, threads, *extra):
    command = [sys.executable, os.path.join(ROOT, 'main.py'), '-f', def_path, '-d', data,
               '-r', result, '--config', json.dumps(CONFIG), '--epoch', str(epochs),
               '--seed', str(seed), '--threads', str(threads), '--batch-size', '64', '-c',
               '--keep-checkpoints', 'best', *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f'{" ".join(command)} failed:\n{done.stderr}')
    with open(os.path.join(result, 'trials', 't0000', 'history.csv')) as handle:
        accuracy = [float(row['val_accuracy']) for row in csv.DictReader(handle)]
    return accuracy, time.perf_counter() - start


def epochs_to(accuracy, target):
    return next((epoch for epoch, value in enumerate(accuracy, 1) if value >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, default=2)
    parser.add_argument('--train', type=int, default=3000, help='training rows per task')
    parser.add_argument('--epochs', type=int, default=5, help='most epochs on task B')
    parser.add_argument('--pretrain-epochs', type=int, default=3)
    parser.add_argument('--target', type=float, default=0.8, help='validation accuracy')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def_path = os.path.join(tmp, 'def.py')
        with open(def_path, 'w') as handle:
            handle.write(DEF)
        write_task(os.path.join(tmp, 'A'), 'A', args.train, 100)
        accuracy, seconds = train(def_path, os.path.join(tmp, 'A'), os.path.join(tmp, 'rA'),
                                  args.pretrain_epochs, 100, args.threads)
        print(f'task A (motif {MOTIF_A}): {args.pretrain_epochs} epochs, validation accuracy '
              + ' '.join(f'{a:.3f}' for a in accuracy) + f' ({seconds:.0f} s)')
        print(f'task B (motifs {MOTIF_A} and {MOTIF_B}), target validation accuracy '
              f'{args.target}, at most {args.epochs} epochs:')
        print(f'{"seed":>4}  {"scratch":>8}  {"fine-tuned":>10}  accuracy per epoch '
              f'(scratch | fine-tuned)')
        found = {'scratch': [], 'fine-tuned': []}
        for seed in range(args.seeds):
            data = os.path.join(tmp, f'B{seed}')
            write_task(data, 'B', args.train, 200 + seed)
            runs = {}
            for name, extra in (('scratch', ()),
                                ('fine-tuned', ('--init-from', os.path.join(tmp, 'rA'),
                                                '--init-layers', CONV_BLOCKS))):
                runs[name], _ = train(def_path, data, os.path.join(tmp, f'{name}{seed}'),
                                      args.epochs, seed, args.threads, *extra)
                found[name].append(epochs_to(runs[name], args.target))
            shown = [str(found[name][-1] or f'>{args.epochs}') for name in found]
            print(f'{seed:>4}  {shown[0]:>8}  {shown[1]:>10}  '
                  + ' '.join(f'{a:.2f}' for a in runs['scratch']) + ' | '
                  + ' '.join(f'{a:.2f}' for a in runs['fine-tuned']))
        for name, values in found.items():
            reached = [v for v in values if v is not None]
            median = np.median([v or args.epochs + 1 for v in values]) if values else 'none'
            print(f'{name}: reached the target in {len(reached)}/{len(values)} seeds, '
                  f'median epochs {median} (not reached counted as {args.epochs + 1})')


if __name__ == '__main__':
    main()
