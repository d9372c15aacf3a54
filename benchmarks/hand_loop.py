"""The plain PyTorch baseline of ``bench_training.py``, run in a fresh process of its own.

The network and optimizer come from ``benchmarks/defs/bench_def.py`` (the file the CLI trains),
the data from the same HDF5 files. Per batch: ``zero_grad``, forward, cross-entropy,
``backward``, ``step``, ``loss.item()``; only the training passes are timed, then each epoch is
validated as the CLI does. Writes ``{'train_seconds': [...], 'cpu_seconds': [...], 'wall': s,
'waited': s, 'last': {...}, 'threads': n}`` as JSON to ``--out``.

With ``--lockstep DIR`` it trains epoch k only once the CLI has written ``DIR/cli_k``, and writes
``DIR/go_k`` when done, so the two take turns.
"""
import argparse
import json
import os
import sys
import time

START = time.perf_counter()

import torch  # noqa: E402  (imports count in the wall time, as they do for the CLI)
import torch.nn.functional as F  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(path, deadline=600):
    """Sleep until ``path`` exists; returns the seconds waited."""
    tick = time.perf_counter()
    while not os.path.exists(path):
        if time.perf_counter() - tick > deadline:
            sys.exit(f'hand_loop: no {path} after {deadline} s')
        time.sleep(0.001)
    return time.perf_counter() - tick


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help='folder with train.h5 and valid.h5')
    parser.add_argument('--epochs', type=int, required=True)
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument('--threads', type=int, required=True)
    parser.add_argument('--loader', choices=('memory', 'h5'), default='memory')
    parser.add_argument('--lockstep', metavar='DIR')
    parser.add_argument('--out', required=True, help='JSON file for the results')
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    sys.path.insert(0, REPO)
    sys.path.insert(0, os.path.join(REPO, 'benchmarks', 'defs'))
    import bench_def

    torch.manual_seed(0)
    config = bench_def.get_config()
    network = bench_def.build_network(config)
    optimizer = bench_def.build_optimizer(network, config)
    read = lambda name: [torch.from_numpy(a)
                         for a in bench_def.read_h5(os.path.join(args.data, name))]
    X_val, Y_val = read('valid.h5')
    if args.loader == 'h5':
        from batch_generator import H5pyBatchGenerator
        stream = H5pyBatchGenerator(os.path.join(args.data, 'train.h5'), args.batch_size,
                                    shuffle=True, seed=0)

        def batches():
            for x, y in stream:
                yield torch.from_numpy(x), torch.from_numpy(y)
    else:
        X, Y = read('train.h5')
        order_rng = torch.Generator().manual_seed(0)

        def batches():
            order = torch.randperm(len(X), generator=order_rng)
            for i in range(0, len(X), args.batch_size):
                index = order[i:i + args.batch_size]
                yield X[index], Y[index]

    train_seconds, cpu_seconds, waited, last = [], [], 0.0, None
    for epoch in range(1, args.epochs + 1):
        if args.lockstep:
            waited += wait_for(os.path.join(args.lockstep, f'cli_{epoch}'))
        network.train()
        tick, cpu = time.perf_counter(), time.process_time()
        loss_sum, n = 0.0, 0
        for x, y in batches():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(network(x)['y_pred_loss'], y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(x)
            n += len(x)
        train_seconds.append(time.perf_counter() - tick)
        cpu_seconds.append(time.process_time() - cpu)
        network.eval()
        with torch.no_grad():
            logits = torch.cat([network(X_val[i:i + args.batch_size])['y_pred_loss']
                                for i in range(0, len(X_val), args.batch_size)])
        last = {'train_loss': loss_sum / n,
                'val_loss': float(F.cross_entropy(logits, Y_val)),
                'val_accuracy': float((logits.argmax(1) == Y_val).float().mean())}
        if args.lockstep:
            open(os.path.join(args.lockstep, f'go_{epoch}'), 'w').close()
    result = {'train_seconds': train_seconds, 'cpu_seconds': cpu_seconds, 'wall': time.perf_counter() - START,
              'waited': waited, 'last': last, 'threads': torch.get_num_threads()}
    with open(args.out, 'w') as handle:
        json.dump(result, handle)
    return 0


if __name__ == '__main__':
    sys.exit(main())
