"""Epoch throughput and peak memory of ``H5pyBatchGenerator`` streaming a large shuffled HDF5 file.

The file (written once, cached in ``--dir``) holds ``data``, float32 shape=(N, 4, 1, 101), one-hot
DNA, chunked by ``--chunk-rows`` rows, and ``label``, int64 shape=(N,), the row's own index. The
first positions of every sequence spell the row index in base 4 as well, so a batch shows whether
its ``x`` and ``y`` still belong together. The default N = 1,000,000 makes a 1.6 GB file.

Each measurement runs in a fresh subprocess, which iterates ``--epochs`` full epochs through a
trivial model step (a ``Linear(404, 1)`` forward, backward and SGD step on the flattened batch, or
a plain sum with ``--step sum``) so that the generator dominates, and reports rows/s and its peak
resident memory (``VmHWM`` of ``/proc/self/status``):

``generator``
    ``H5pyBatchGenerator(path, batch_size, shuffle=True)``: the figure under test. Targets:
    >= 200k rows/s, peak RSS < 700 MB for the 1.6 GB file.
``h5py slices``
    baseline: ``f['data'][i:i + batch_size]`` (and ``label``), in order, no shuffling.
``h5py blocks``
    baseline: contiguous 64 MiB blocks read in order with ``read_direct``, served as batch views;
    as fast as h5py streams the file.

The generator run also checks that each epoch visits every row exactly once, that ``x`` and ``y``
stay paired, and that two epochs come in different orders.

    python benchmarks/bench_h5_stream.py                  # 1.6 GB file; ~2 min once it exists
    python benchmarks/bench_h5_stream.py --rows 100000    # a 160 MB file, a few seconds
    python benchmarks/bench_h5_stream.py --cache cold     # evict the file from the page cache
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from measure import memory_kib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LENGTH = 101
MODES = ('generator', 'h5py slices', 'h5py blocks')


def digits_needed(rows):
    """Base-4 digits that spell every row index below ``rows``."""
    return max(1, math.ceil(math.log(max(rows, 2), 4)))


def write_file(path, rows, chunk_rows, seed=0):
    """Write the benchmark file to ``path`` (through a temporary name, so a crash leaves none)."""
    import h5py
    d = digits_needed(rows)
    powers = 4 ** np.arange(d - 1, -1, -1)
    rng = np.random.default_rng(seed)
    tmp = path + '.part'
    step = chunk_rows * 64
    with h5py.File(tmp, 'w') as f:
        data = f.create_dataset('data', (rows, 4, 1, LENGTH), np.float32,
                                chunks=(chunk_rows, 4, 1, LENGTH))
        label = f.create_dataset('label', (rows,), np.int64, chunks=(min(rows, 2 ** 16),))
        for start in range(0, rows, step):
            index = np.arange(start, min(start + step, rows))
            bases = rng.integers(0, 4, size=(len(index), LENGTH), dtype=np.int8)
            bases[:, :d] = (index[:, None] // powers) % 4
            x = np.zeros((len(index), 4, 1, LENGTH), np.float32)
            x[np.arange(len(index))[:, None], bases, 0, np.arange(LENGTH)] = 1
            data[start:start + len(index)] = x
            label[start:start + len(index)] = index
    os.replace(tmp, path)


def evict(path):
    """Drop the file's pages from the page cache (this file only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path):
    """Read the whole file once, so that it is in the page cache."""
    with open(path, 'rb') as handle:
        while handle.read(64 * 2 ** 20):
            pass


# -- the measured subprocess ---------------------------------------------------------------------
def worker(args):
    """Iterate ``args.epochs`` epochs of one mode; prints one JSON line."""
    import h5py
    import torch
    sys.path.insert(0, args.code)
    from batch_generator import H5pyBatchGenerator

    torch.set_num_threads(1)
    path, size = args.file, args.batch_size
    with h5py.File(path, 'r') as f:
        rows = len(f['label'])
    d = digits_needed(rows)
    powers = torch.from_numpy(4 ** np.arange(d - 1, -1, -1))
    linear = torch.nn.Linear(4 * LENGTH, 1)
    optimizer = torch.optim.SGD(linear.parameters(), lr=1e-6)

    def step(x, y):
        """The trivial model: touches every value of the batch."""
        xt = torch.from_numpy(x).reshape(len(x), -1)
        if args.step == 'sum':
            return float(xt.sum())
        optimizer.zero_grad(set_to_none=True)
        loss = linear(xt).square().mean()
        loss.backward()
        optimizer.step()
        return float(loss)

    def paired(x, y):
        """Rows whose sequence spells a row index other than their label."""
        spelled = torch.from_numpy(x[:, :, 0, :d]).argmax(1) @ powers
        return int((spelled != torch.from_numpy(y)).sum())

    if args.worker == 'generator':
        generator = H5pyBatchGenerator(path, size, shuffle=True, seed=0)

        def epoch():
            return iter(generator)
    elif args.worker == 'h5py slices':
        f = h5py.File(path, 'r')
        data, label = f['data'], f['label']

        def epoch():
            for start in range(0, rows, size):
                yield data[start:start + size], label[start:start + size]
    else:
        f = h5py.File(path, 'r')
        data, label = f['data'], f['label']
        block = max(size, (64 * 2 ** 20) // (4 * 4 * LENGTH + 8) // size * size)

        def epoch():
            for start in range(0, rows, block):
                stop = min(start + block, rows)
                x = np.empty((stop - start, 4, 1, LENGTH), np.float32)
                y = np.empty(stop - start, np.int64)
                data.read_direct(x, np.s_[start:stop])
                label.read_direct(y, np.s_[start:stop])
                for i in range(0, stop - start, size):
                    yield x[i:i + size], y[i:i + size]

    before = memory_kib('VmRSS')
    seconds, orders, mismatched = [], [], 0
    for _ in range(args.epochs):
        seen = np.empty(rows, np.int64)  # labels in the order they came: the epoch's order
        n = 0
        if args.cache == 'cold':
            evict(path)
        start = time.perf_counter()
        for x, y in epoch():
            step(x, y)
            mismatched += paired(x, y)
            seen[n:n + len(y)] = y
            n += len(y)
        seconds.append(time.perf_counter() - start)
        if n != rows:
            sys.exit(f'{args.worker}: an epoch served {n} rows, the file has {rows}')
        orders.append(seen)
    counts = np.bincount(orders[0], minlength=rows)
    result = {
        'mode': args.worker, 'rows': rows, 'seconds': seconds,
        'rss_before_mb': before / 1024, 'peak_rss_mb': memory_kib('VmHWM') / 1024,
        'mismatched': mismatched,
        'every_row_once': all(bool(np.array_equal(np.sort(o), np.arange(rows))) for o in orders),
        'rows_missing': int((counts == 0).sum()), 'rows_repeated': int((counts > 1).sum()),
        'epochs_differ': (bool(not np.array_equal(orders[0], orders[1]))
                          if len(orders) > 1 else None),
        'in_file_order': bool(np.array_equal(orders[0], np.arange(rows))),
    }
    print(json.dumps(result))


# -- the driver ----------------------------------------------------------------------------------
def measure(args, path, mode):
    command = [sys.executable, os.path.abspath(__file__), '--worker', mode, '--file', path,
               '--batch-size', str(args.batch_size), '--epochs', str(args.epochs),
               '--step', args.step, '--code', args.code, '--cache', args.cache]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    if done.returncode != 0:
        sys.exit(f'{mode} failed ({done.returncode}):\n{done.stderr[-5000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dir', default=os.path.join(HERE, '.data'),
                        help='where the HDF5 file is written once and reused '
                             '(default: benchmarks/.data, git-ignored)')
    parser.add_argument('--rows', type=int, default=1_000_000,
                        help='rows of the file (default 1000000: 1.6 GB)')
    parser.add_argument('--chunk-rows', type=int, default=1024,
                        help='HDF5 chunk of "data", in rows (default 1024: 1.6 MB)')
    parser.add_argument('--batch-size', type=int, default=128, help='default 128')
    parser.add_argument('--epochs', type=int, default=2, help='epochs per run (default 2)')
    parser.add_argument('--step', choices=('linear', 'sum'), default='linear',
                        help='the trivial model step (default linear)')
    parser.add_argument('--cache', choices=('warm', 'cold'), default='warm',
                        help='warm (default): read the file into the page cache first; cold: '
                             'evict it from the page cache before every epoch '
                             '(posix_fadvise DONTNEED)')
    parser.add_argument('--modes', default=','.join(MODES),
                        help=f'comma-separated, of: {", ".join(MODES)}')
    parser.add_argument('--code', default=REPO,
                        help='folder to import batch_generator.py from, to compare versions '
                             '(default: this checkout)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--file', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    modes = [m.strip() for m in args.modes.split(',')]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f'--modes: unknown {unknown}; choose from {list(MODES)}')

    sys.path.insert(0, HERE)
    from bench_training import busy_cpu_seconds, own_cpu_seconds, print_other_load
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f'stream_{args.rows}x4x1x{LENGTH}_c{args.chunk_rows}.h5')
    if not os.path.exists(path):
        tick = time.perf_counter()
        write_file(path, args.rows, args.chunk_rows)
        print(f'wrote {path} in {time.perf_counter() - tick:.0f} s')
    size_gb = os.path.getsize(path) / 1e9
    if args.cache == 'warm':
        warm(path)
    print(f'bench_h5_stream: {path} ({args.rows} rows, {size_gb:.2f} GB, chunks of '
          f'{args.chunk_rows} rows), batch {args.batch_size}, {args.epochs} epoch(s) per run, '
          f'step {args.step}, page cache {args.cache}, batch_generator from {args.code}; '
          f'{os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.2f}')
    busy, own, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    results = {mode: measure(args, path, mode) for mode in modes}
    elapsed = time.perf_counter() - start
    foreign = (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own) if busy else None

    rate = lambda r: r['rows'] / np.median(r['seconds'])
    for mode, r in results.items():
        epochs = ' '.join(f'{r["rows"] / s / 1e3:.0f}k' for s in r['seconds'])
        print(f'  {mode:12s} {rate(r) / 1e3:7.0f}k rows/s  [epochs: {epochs}]  peak RSS '
              f'{r["peak_rss_mb"]:5.0f} MB (before iterating: {r["rss_before_mb"]:.0f} MB)')
    if 'generator' in results:
        g = results['generator']
        size_ok = args.rows >= 1_000_000
        print(f'  generator targets: {rate(g) / 1e3:.0f}k rows/s >= 200k: '
              f'{"met" if rate(g) >= 2e5 else "MISSED"}; peak RSS {g["peak_rss_mb"]:.0f} MB '
              f'< 700 MB: {"met" if g["peak_rss_mb"] < 700 else "MISSED"}'
              + ('' if size_ok else ' (the targets are for the 1.6 GB file)'))
        for mode in modes[1:]:
            print(f'  ratio generator / {mode}: {rate(g) / rate(results[mode]):.3f}')
        print(f'  checks: every row exactly once per epoch: {g["every_row_once"]} (missing '
              f'{g["rows_missing"]}, repeated {g["rows_repeated"]} in epoch 1); x and y paired: '
              f'{g["mismatched"] == 0} ({g["mismatched"]} mismatched rows); epochs in different '
              f'orders: {g["epochs_differ"]}; epoch 1 in file order: {g["in_file_order"]}')
        if not (g['every_row_once'] and g['mismatched'] == 0 and g['epochs_differ'] is not False
                and not g['in_file_order']):
            print('  CHECK FAILED')
            return 1
    print_other_load(foreign, elapsed, 'of runs')
    return 0


if __name__ == '__main__':
    sys.exit(main())
