"""Training speed of a plain PyTorch loop at 1, 2, … torch threads, and the tool's default.

    python benchmarks/bench_threads.py [--seconds 8] [--rounds 3]

The network is ``defs/bench_def.py``'s small sequence CNN on random one-hot batches of 128 × 4 ×
1 × 101 held in memory; each batch runs zero_grad, forward, cross-entropy, backward and step.
The thread counts take turns for ``--rounds`` rounds of ``--seconds`` each (so that a change in
the machine's load hits them all alike), and the script prints the median samples/s of each,
its ratio to 1 thread, the thread count ``dlutil.threads.default_threads()`` picks now, and how
much CPU other processes used meanwhile. Nothing is asserted: the figures depend on the machine
and its load.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(HERE, 'defs')]


def samples_per_second(network, optimizer, x, y, seconds):
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        loss = F.cross_entropy(network(x)['y_pred_loss'], y)
        loss.backward()
        optimizer.step()
        steps += 1
    return steps * len(x) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=8.0, help='per measurement')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, nargs='+', default=None,
                        help='thread counts to compare (default: 1 and 2 up to the cores)')
    args = parser.parse_args(argv)

    import bench_def
    from bench_training import busy_cpu_seconds, own_cpu_seconds, print_other_load
    from dlutil.threads import default_threads, usable_cores

    chosen, why = default_threads()
    cores = usable_cores()
    counts = args.threads or sorted({1, 2, min(4, cores), cores} - {0})
    torch.manual_seed(0)
    network = bench_def.build_network(bench_def.get_config())
    optimizer = bench_def.build_optimizer(network, bench_def.get_config())
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.eye(4, dtype=np.float32)[rng.integers(0, 4, (128, 101))]
                         .transpose(0, 2, 1)[:, :, None, :].copy())
    y = torch.from_numpy(rng.integers(0, 2, 128))
    print(f'bench_threads: {cores} usable cores, load average {os.getloadavg()[0]:.2f}; '
          f'default_threads() = {chosen} ({why}); {args.rounds} rounds of {args.seconds:g} s')
    busy, own, start = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    rates = {n: [] for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            torch.set_num_threads(n)
            samples_per_second(network, optimizer, x, y, 0.5)  # warm up at this count
            rates[n].append(samples_per_second(network, optimizer, x, y, args.seconds))
    elapsed = time.perf_counter() - start
    foreign = (busy_cpu_seconds() - busy) - (own_cpu_seconds() - own) if busy else None
    one = np.median(rates[counts[0]])
    for n in counts:
        mark = '  <- default now' if n == chosen else ''
        print(f'  {n} thread(s): {np.median(rates[n]):8.0f} samples/s  ratio to '
              f'{counts[0]} thread(s) {np.median(rates[n]) / one:.2f}  '
              f'[rounds: {" ".join(f"{r:.0f}" for r in rates[n])}]{mark}')
    print_other_load(foreign, elapsed, 'of measurements')
    return 0


if __name__ == '__main__':
    sys.exit(main())
