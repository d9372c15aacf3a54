"""Training throughput of the CLI against a hand-written PyTorch loop, in the same run.

Both train the network of ``benchmarks/defs/bench_def.py`` (a small sequence CNN on one-hot DNA,
shape=(n, 4, 1, 101), two classes) on the same HDF5 data with the same optimizer (Adam), batch
size, number of epochs and torch thread count:

1. the real command line, one configuration trained for E epochs (``--eta`` > E gives Hyperband
   a single bracket with a single configuration)::

       python main.py -f benchmarks/defs/bench_def.py -d DATA -r RESULTS -y -ep E --eta E+1 \\
           -bs B --seed 0 -c

   its per-epoch training time is the ``train_seconds`` column of
   ``RESULTS/trials/t0000/history.csv`` (the training pass, validation excluded);
2. ``benchmarks/hand_loop.py``, a plain PyTorch loop (``torch.manual_seed(0)``; per batch
   ``zero_grad``, forward, cross-entropy, ``backward``, ``step``, ``loss.item()``) over the same
   data, timing the training passes only, then validating each epoch as the CLI does.

Both run as fresh processes with the same environment: torch threads pinned (``--threads``,
default 1) and, by default, glibc's malloc thresholds pinned (see :func:`malloc_env`). By default
they run in lock-step, one epoch each in turn (the def.py's ``end_epoch`` waits while the hand
loop trains an epoch, outside ``train_seconds``), so that other work on the machine slows both
alike; ``--sequential`` runs the whole command first and the hand loop after it.

Printed: the median training samples/s over the epochs after the first (warm-up) one, for both,
and the ratio CLI / hand loop (target >= 0.95); the same per CPU-second; the wall time of the
whole command (process start, imports, data loading, validation, checkpoints, less lock-step
waits) against the hand loop's (imports, data loading, training, validation), as an informative
figure; and how much CPU other processes used meanwhile.

    python benchmarks/bench_training.py            # about a minute
    python benchmarks/bench_training.py --quick    # a smoke run: 2000 rows, 3 epochs
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEF_PY = os.path.join(REPO, 'benchmarks', 'defs', 'bench_def.py')
MOTIF = 'TGACTCA'  # an AP-1 site, planted in the rows of class 1


def one_hot(rng, n, length):
    """Random DNA, shape=(n, 4, 1, length) float32, and labels (n,) int64: 1 = has MOTIF."""
    bases = rng.integers(0, 4, size=(n, length))
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    motif = np.array(['ACGT'.index(c) for c in MOTIF])
    where = rng.integers(0, length - len(motif), size=n)
    for i in np.flatnonzero(labels):
        bases[i, where[i]:where[i] + len(motif)] = motif
    x = np.zeros((n, 4, 1, length), np.float32)
    x[np.arange(n)[:, None], bases, 0, np.arange(length)[None, :]] = 1
    return x, labels


def make_data(folder, n_train, n_val, seed=0):
    """``folder/train.h5`` and ``folder/valid.h5`` with ``data`` and ``label``."""
    rng = np.random.default_rng(seed)
    for name, n in (('train.h5', n_train), ('valid.h5', n_val)):
        x, y = one_hot(rng, n, 101)
        with h5py.File(os.path.join(folder, name), 'w') as f:
            f.create_dataset('data', data=x, chunks=(min(n, 512),) + x.shape[1:])
            f.create_dataset('label', data=y)


def malloc_env(mode):
    """Environment that pins glibc's malloc thresholds (``mode='pinned'``), or nothing.

    By default glibc adapts its mmap threshold to the sizes freed so far and gives the top of
    the heap back to the kernel above a trim threshold; depending on a process's allocation
    history, the few-MB activation tensors of every batch are then mapped and unmapped again,
    and every batch page-faults ~12 MB afresh (measured: ~190k minor faults per epoch of 63
    batches, a third of the run time). Whether a process falls into that regime is a matter of
    luck, so the CLI and the hand loop would be compared on a coin toss. Pinned, neither
    process gives memory back during an epoch.
    """
    if mode != 'pinned':
        return {}
    tunables = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824'
    old = os.environ.get('GLIBC_TUNABLES')
    return {'GLIBC_TUNABLES': f'{old}:{tunables}' if old else tunables}


def cli_command(data_dir, result_dir, epochs, batch_size):
    return [sys.executable, os.path.join(REPO, 'main.py'), '-f', DEF_PY, '-d', data_dir,
            '-r', result_dir, '-y', '-ep', str(epochs), '--eta', str(epochs + 1),
            '-bs', str(batch_size), '--seed', '0', '-c']


def hand_command(args, data_dir, out, lockstep=None):
    command = [sys.executable, os.path.join(REPO, 'benchmarks', 'hand_loop.py'),
               '--data', data_dir, '--epochs', str(args.epochs), '--batch-size',
               str(args.batch_size), '--threads', str(args.threads), '--loader', args.loader,
               '--out', out]
    return command + (['--lockstep', lockstep] if lockstep else [])


def run(args, folder):
    """Run the CLI and the hand loop, each in a fresh process with the same environment.

    Returns ``(cli, hand)``: dicts with ``train_seconds`` (per epoch), ``wall`` (the process,
    less its lock-step waits), ``last`` (last epoch's losses) and ``threads``.
    """
    data_dir, result_dir = os.path.join(folder, 'data'), os.path.join(folder, 'results')
    out = os.path.join(folder, 'hand.json')
    sync = os.path.join(folder, 'lockstep')
    for path in (result_dir, sync):
        shutil.rmtree(path, ignore_errors=True)
    env = dict(os.environ, BENCH_THREADS=str(args.threads), BENCH_LOADER=args.loader,
               OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               **malloc_env(args.malloc))
    commands = {'cli': cli_command(data_dir, result_dir, args.epochs, args.batch_size),
                'hand': hand_command(args, data_dir, out,
                                     None if args.sequential else sync)}
    logs = {name: open(os.path.join(folder, f'{name}.log'), 'w+') for name in commands}
    walls, returncodes = {}, {}
    if args.sequential:
        for name in ('cli', 'hand'):
            start = time.perf_counter()
            returncodes[name] = subprocess.run(commands[name], env=env, cwd=REPO,
                                               stdout=logs[name],
                                               stderr=subprocess.STDOUT).returncode
            walls[name] = time.perf_counter() - start
    else:
        os.makedirs(sync)
        env['BENCH_LOCKSTEP'] = sync
        start = time.perf_counter()
        running = {name: subprocess.Popen(command, env=env, cwd=REPO, stdout=logs[name],
                                          stderr=subprocess.STDOUT)
                   for name, command in commands.items()}
        while len(walls) < len(running):
            for name, process in running.items():
                if name not in walls and process.poll() is not None:
                    walls[name] = time.perf_counter() - start
                    returncodes[name] = process.returncode
                    if process.returncode != 0:  # the other one would wait for it forever
                        for other in running.values():
                            if other.poll() is None:
                                other.kill()
            time.sleep(0.005)
    for name, log in logs.items():
        if returncodes[name] != 0:
            log.seek(0)
            sys.exit(f'the {name} run failed ({returncodes[name]}): {commands[name]}\n'
                     f'{log.read()[-5000:]}')

    with open(os.path.join(result_dir, 'trials', 't0000', 'history.csv')) as handle:
        history = list(csv.DictReader(handle))
    if len(history) != args.epochs:
        sys.exit(f'expected {args.epochs} epochs in history.csv, found {len(history)}')
    waits = os.path.join(sync, 'cli_waits')
    cli_waited = (sum(float(v) for v in open(waits).read().split())
                  if os.path.exists(waits) else 0.0)
    cli = {'train_seconds': [float(row['train_seconds']) for row in history],
           'cpu_seconds': [float(row['train_cpu_seconds']) for row in history],
           'wall': walls['cli'] - cli_waited,
           'last': {key: float(history[-1][key])
                    for key in ('train_loss', 'val_loss', 'val_accuracy')},
           'threads': int(float(history[-1]['train_threads']))}
    with open(out) as handle:
        hand = json.load(handle)
    hand['wall'] = walls['hand'] - hand['waited']
    return cli, hand


def busy_cpu_seconds():
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``)."""
    try:
        with open('/proc/stat') as handle:
            fields = [int(v) for v in handle.readline().split()[1:8]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf('SC_CLK_TCK')


def own_cpu_seconds():
    import resource
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def print_other_load(foreign, elapsed, what):
    """Say how much CPU other processes took while we measured (noise in the timings)."""
    if foreign is None:
        return
    share = foreign / elapsed
    print(f'  other processes used {foreign:.0f} CPU-seconds during the {elapsed:.0f} s {what} '
          f'({share:.2f} of {os.cpu_count()} CPUs on average)'
          + ('; expect noise' if share > 0.25 else ''))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rows', type=int, default=24000, help='training rows (default 24000)')
    parser.add_argument('--epochs', type=int, default=9,
                        help='epochs, the first of which is a warm-up (default 9)')
    parser.add_argument('--batch-size', type=int, default=128, help='default 128')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads, the same for both (default 1: with more, other '
                             'work on the machine makes the timings erratic)')
    parser.add_argument('--loader', choices=('memory', 'h5'), default='memory',
                        help='memory (default): MatrixBatchGenerator in the CLI, tensors in the '
                             'hand loop; h5: H5pyBatchGenerator in both')
    parser.add_argument('--malloc', choices=('pinned', 'default'), default='pinned',
                        help="pinned (default): fix glibc malloc's mmap and trim thresholds in "
                             'both processes (GLIBC_TUNABLES); default: leave them adaptive, '
                             'which makes either process page-fault every batch by chance')
    parser.add_argument('--sequential', action='store_true',
                        help='run the whole command, then the hand loop (default: lock-step)')
    parser.add_argument('--quick', action='store_true', help='2000 rows, 3 epochs')
    parser.add_argument('--keep', metavar='DIR',
                        help='write the data, results and logs to DIR and keep them')
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs = 2000, 3
    if args.epochs < 2:
        parser.error(f'--epochs must be at least 2 (one warm-up), got {args.epochs}')

    n_val = max(args.rows // 10, 1)
    import torch
    print(f'bench_training: {args.rows} training + {n_val} validation rows of shape '
          f'(4, 1, 101), batch {args.batch_size}, {args.epochs} epochs (first is warm-up), '
          f'{args.threads} torch thread(s), loader {args.loader}, malloc {args.malloc}, '
          f'{"sequential" if args.sequential else "lock-step"}; torch {torch.__version__}, '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}')

    folder = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(
        prefix='bench_training_')
    os.makedirs(os.path.join(folder, 'data'), exist_ok=True)
    try:
        make_data(os.path.join(folder, 'data'), args.rows, n_val)
        busy, own, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        cli, hand = run(args, folder)
        elapsed = time.perf_counter() - start
        foreign = (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own) if busy else None
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    for name, result in (('CLI', cli), ('hand loop', hand)):
        if result['threads'] != args.threads:
            sys.exit(f'the {name} trained with {result["threads"]} torch threads, '
                     f'not {args.threads}')

    rate = lambda seconds: args.rows / statistics.median(seconds[1:])  # warm-up left out
    cli_rate, hand_rate = rate(cli['train_seconds']), rate(hand['train_seconds'])
    ratio = cli_rate / hand_rate
    per_epoch = lambda seconds: ' '.join(f'{args.rows / s:.0f}' for s in seconds)
    print(f'  train samples/s, median of epochs 2-{args.epochs}   [every epoch]')
    print(f'  CLI (main.py)      {cli_rate:8.0f}   [{per_epoch(cli["train_seconds"])}]')
    print(f'  hand-written loop  {hand_rate:8.0f}   [{per_epoch(hand["train_seconds"])}]')
    print(f'  ratio CLI / hand   {ratio:8.3f}   target >= 0.95: '
          f'{"met" if ratio >= 0.95 else "MISSED"}')
    cpu_ratio = rate(cli['cpu_seconds']) / rate(hand['cpu_seconds'])
    print(f'  per CPU-second (informative, insensitive to other load): CLI '
          f'{rate(cli["cpu_seconds"]):.0f}, hand {rate(hand["cpu_seconds"]):.0f} samples per '
          f'CPU-s, ratio {cpu_ratio:.3f}')
    print(f'  wall (informative): whole command {cli["wall"]:.1f} s vs hand loop '
          f'{hand["wall"]:.1f} s, each a fresh process incl. imports, data loading and '
          f'validation{"" if args.sequential else ", less lock-step waits"}: hand / CLI '
          f'{hand["wall"] / cli["wall"]:.3f} (the command also writes checkpoints and results)')
    c, h = cli['last'], hand['last']
    print(f'  sanity, last epoch: CLI train_loss {c["train_loss"]:.4f} val_loss '
          f'{c["val_loss"]:.4f} val_accuracy {c["val_accuracy"]:.3f} | hand train_loss '
          f'{h["train_loss"]:.4f} val_loss {h["val_loss"]:.4f} val_accuracy '
          f'{h["val_accuracy"]:.3f}')
    print_other_load(foreign, elapsed, 'run')
    return 0


if __name__ == '__main__':
    sys.exit(main())
