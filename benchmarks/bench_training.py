"""Training throughput of the CLI against a hand-written PyTorch loop, in the same run.

Both train the network of ``benchmarks/defs/bench_def.py`` (a small sequence CNN on one-hot DNA,
shape=(n, 4, 1, 101)) on the same HDF5 data, with the same optimizer, batch size, number of
epochs and thread count:

1. the real command line, one configuration for E epochs (``-ep E --eta E+1``)::

       python main.py -f benchmarks/defs/bench_def.py -d DATA -r RESULTS -y -ep E -bs B \\
           --eta E+1 --seed 0 -c

   whose per-epoch training time is the ``train_seconds`` column of
   ``RESULTS/trials/t0000/history.csv`` (training pass only, validation excluded);
2. a plain PyTorch loop (``zero_grad``, forward, cross-entropy, ``backward``, ``step``) over the
   same arrays, timing only the training passes.

The figure is the median training samples/s over the epochs after the first (warm-up) one, and
the ratio CLI / hand loop (target >= 0.95). The wall time of the whole command (process start,
imports, data loading, validation, checkpoints) against the hand loop's wall time (data loading,
training and validation) is printed as a second, informative figure.

    python benchmarks/bench_training.py            # about a minute and a half on 2 cores
    python benchmarks/bench_training.py --quick    # a few seconds
"""
import argparse
import csv
import importlib.util
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
MOTIF = 'TGACTCA'  # AP-1 site, planted in the positive class


def one_hot(rng, n, length):
    """Random DNA, shape=(n, 4, 1, length) float32; half the rows carry ``MOTIF`` (label 1)."""
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
    rng = np.random.default_rng(seed)
    for name, n in (('train.h5', n_train), ('valid.h5', n_val)):
        x, y = one_hot(rng, n, 101)
        with h5py.File(os.path.join(folder, name), 'w') as f:
            f.create_dataset('data', data=x, chunks=(min(n, 512),) + x.shape[1:])
            f.create_dataset('label', data=y)


def load_def():
    spec = importlib.util.spec_from_file_location('bench_def', DEF_PY)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, REPO)  # bench_def imports base_model and batch_generator
    spec.loader.exec_module(module)
    return module


def run_cli(data_dir, result_dir, epochs, batch_size, threads, loader):
    """Run main.py; returns (train_seconds per epoch, wall seconds of the command, last row)."""
    command = [sys.executable, os.path.join(REPO, 'main.py'), '-f', DEF_PY, '-d', data_dir,
               '-r', result_dir, '-y', '-ep', str(epochs), '--eta', str(epochs + 1),
               '-bs', str(batch_size), '--seed', '0', '-c']
    env = dict(os.environ, BENCH_THREADS=str(threads), BENCH_LOADER=loader,
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f'the CLI failed ({done.returncode}):\n{done.stderr}')
    with open(os.path.join(result_dir, 'trials', 't0000', 'history.csv')) as handle:
        history = list(csv.DictReader(handle))
    if len(history) != epochs:
        sys.exit(f'expected {epochs} epochs in history.csv, found {len(history)}')
    return [float(row['train_seconds']) for row in history], wall, history[-1]


def hand_loop(bench_def, data_dir, epochs, batch_size, loader):
    """The plain PyTorch loop; returns (train seconds per epoch, wall seconds, last val row)."""
    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    torch.manual_seed(0)
    config = bench_def.get_config()
    network = bench_def.build_network(config)
    optimizer = bench_def.build_optimizer(network, config)
    X_val, Y_val = (torch.from_numpy(a) for a in bench_def.read_h5(os.path.join(data_dir,
                                                                               'valid.h5')))
    if loader == 'h5':
        from batch_generator import H5pyBatchGenerator
        stream = H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size,
                                    shuffle=True, seed=0)
    else:
        X, Y = (torch.from_numpy(a) for a in bench_def.read_h5(os.path.join(data_dir,
                                                                           'train.h5')))
        order_rng = torch.Generator().manual_seed(0)

    def batches():
        if loader == 'h5':
            for x, y in stream:
                yield torch.from_numpy(x), torch.from_numpy(y)
        else:
            order = torch.randperm(len(X), generator=order_rng)
            for i in range(0, len(X), batch_size):
                index = order[i:i + batch_size]
                yield X[index], Y[index]

    seconds, last = [], None
    for _ in range(epochs):
        network.train()
        tick = time.perf_counter()
        loss_sum, n = 0.0, 0
        for x, y in batches():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(network(x)['y_pred_loss'], y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(x)
            n += len(x)
        seconds.append(time.perf_counter() - tick)
        network.eval()
        with torch.no_grad():
            logits = torch.cat([network(X_val[i:i + batch_size])['y_pred_loss']
                                for i in range(0, len(X_val), batch_size)])
        last = {'train_loss': loss_sum / n,
                'val_loss': float(F.cross_entropy(logits, Y_val)),
                'val_accuracy': float((logits.argmax(1) == Y_val).float().mean())}
    return seconds, time.perf_counter() - start, last


def rate(rows, seconds):
    """Median samples/s over epochs."""
    return rows / statistics.median(seconds)


def busy_cpu_seconds():
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``)."""
    try:
        with open('/proc/stat') as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def own_cpu_seconds():
    import resource
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rows', type=int, default=24000, help='training rows (default 24000)')
    parser.add_argument('--epochs', type=int, default=6,
                        help='epochs per run, the first of which is a warm-up (default 6)')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads for both (default 1: with more, a busy machine '
                             'makes the timings erratic)')
    parser.add_argument('--repeat', type=int, default=2,
                        help='runs of each, in the order CLI, hand, hand, CLI, CLI, ... '
                             '(default 2)')
    parser.add_argument('--loader', choices=('memory', 'h5'), default='memory',
                        help='memory: MatrixBatchGenerator in the CLI, tensors in the hand loop; '
                             'h5: H5pyBatchGenerator in both')
    parser.add_argument('--quick', action='store_true', help='2000 rows, 3 epochs, 1 repeat')
    parser.add_argument('--keep', metavar='DIR', help='keep the data and results in DIR')
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.repeat = 2000, 3, 1
    if args.epochs < 2:
        parser.error(f'--epochs must be at least 2 (one warm-up), got {args.epochs}')

    import torch
    torch.set_num_threads(args.threads)
    bench_def = load_def()
    n_val = max(args.rows // 10, 1)
    print(f'bench_training: {args.rows} training rows + {n_val} validation rows of shape '
          f'(4, 1, 101), batch {args.batch_size}, {args.repeat} x {args.epochs} epochs each '
          f'(first of each run is warm-up), {args.threads} torch thread(s), loader '
          f'{args.loader}, torch {torch.__version__}, {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.2f}')

    folder = args.keep or tempfile.mkdtemp(prefix='bench_training_')
    data_dir = os.path.join(folder, 'data')
    os.makedirs(data_dir, exist_ok=True)
    make_data(data_dir, args.rows, n_val)
    runs = {'cli': [], 'hand': []}
    busy, own, tick = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    try:
        order = [('cli', 'hand'), ('hand', 'cli')]
        for r in range(args.repeat):
            for kind in order[r % 2]:
                if kind == 'cli':
                    result_dir = os.path.join(folder, f'results{r}')
                    shutil.rmtree(result_dir, ignore_errors=True)
                    runs['cli'].append(run_cli(data_dir, result_dir, args.epochs,
                                               args.batch_size, args.threads, args.loader))
                else:
                    runs['hand'].append(hand_loop(bench_def, data_dir, args.epochs,
                                                  args.batch_size, args.loader))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.perf_counter() - tick
    foreign = (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own) if busy else None

    # the warm-up epoch of every run is left out
    cli_seconds = [s for seconds, _, _ in runs['cli'] for s in seconds[1:]]
    hand_seconds = [s for seconds, _, _ in runs['hand'] for s in seconds[1:]]
    cli_rate, hand_rate = rate(args.rows, cli_seconds), rate(args.rows, hand_seconds)
    ratio = cli_rate / hand_rate
    per_run = lambda kind: ', '.join(f'{rate(args.rows, seconds[1:]):.0f}'
                                     for seconds, _, _ in runs[kind])
    print(f'  train samples/s, median of {len(cli_seconds)} epochs after warm-up '
          f'(per run in brackets):')
    print(f'  CLI (main.py)      {cli_rate:8.0f}   [{per_run("cli")}]')
    print(f'  hand-written loop  {hand_rate:8.0f}   [{per_run("hand")}]')
    print(f'  ratio CLI / hand   {ratio:8.3f}   target >= 0.95: '
          f'{"met" if ratio >= 0.95 else "MISSED"}')
    cli_wall = statistics.median(wall for _, wall, _ in runs['cli'])
    hand_wall = statistics.median(wall for _, wall, _ in runs['hand'])
    print(f'  wall per run (informative): whole command {cli_wall:.1f} s vs hand loop '
          f'{hand_wall:.1f} s incl. data loading and validation; hand / CLI '
          f'{hand_wall / cli_wall:.3f} (the command adds process start, imports, checkpoints)')
    cli_last, hand_last = runs['cli'][-1][2], runs['hand'][-1][2]
    print(f'  sanity, last epoch: CLI train_loss {float(cli_last["train_loss"]):.4f} '
          f'val_loss {float(cli_last["val_loss"]):.4f} val_accuracy '
          f'{float(cli_last["val_accuracy"]):.3f} | hand train_loss {hand_last["train_loss"]:.4f} '
          f'val_loss {hand_last["val_loss"]:.4f} val_accuracy {hand_last["val_accuracy"]:.3f}')
    if foreign is not None:
        share = foreign / elapsed
        print(f'  other processes used {foreign:.0f} CPU-seconds during the {elapsed:.0f} s run '
              f'({share:.2f} of {os.cpu_count()} CPUs on average)'
              + ('; the figures are noisy, re-run on a quiet machine' if share > 0.25 else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
