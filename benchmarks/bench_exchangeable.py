"""Exchangeable networks on simulations: simulation speed, waiting, and the training step's cost.

Three figures, on the hotspot example's msprime simulator and the seed's network (φ conv(5, 32),
conv(5, 64); g top_k 1; h fc 128, fc 128, softmax), batch size 50:

1. simulations/s of ``SimulationBatchGenerator`` with 1 and 2 simulation processes (warm
   processes, ``--sims`` examples each), next to one simulation loop in this process;
2. the share of training time spent waiting for simulations, training ``--wait-batches`` batches
   with 1 and 2 simulation processes through the core's loop (``BaseModel.train_epoch``, as
   ``train()`` runs it);
3. the training step's throughput (examples/s) against a hand-written PyTorch loop (zero_grad,
   forward, defiNETti's cross-entropy, backward, step, ``loss.item()``) on the same network,
   same initial weights and the same pre-simulated batches, in lock-step rounds (one core epoch,
   then one hand epoch) so that other load slows both alike; the median over rounds. Target
   >= 0.9. The same for the Gaussian example's small network, where the loop's own overhead
   weighs most.

    python benchmarks/bench_exchangeable.py            # about three minutes on 2 busy cores
    python benchmarks/bench_exchangeable.py --quick    # a smoke run
"""
import argparse
import copy
import os
import statistics
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOTSPOT = os.path.join(REPO, 'examples', 'recombination_hotspot')
GAUSSIAN = os.path.join(REPO, 'examples', 'exchangeable_gaussian')


def simulation_rates(simulate, shapes, n, processes_list):
    from batch_generator import SimulationBatchGenerator
    np.random.seed(0)
    tick = time.perf_counter()
    for _ in range(max(10, n // 10)):
        simulate()
    here = max(10, n // 10) / (time.perf_counter() - tick)
    print(f'simulations/s: in this process (a plain loop) {here:.1f}')
    for processes in processes_list:
        with SimulationBatchGenerator(simulate, *shapes, processes=processes,
                                      check=False) as generator:
            generator.sample(2 * processes, 'validation')  # start the processes
            tick = time.perf_counter()
            generator.sample(n, 'test')
            rate = n / (time.perf_counter() - tick)
        print(f'simulations/s: {processes} simulation process{"es" if processes > 1 else ""} '
              f'{rate:.1f} ({rate / here:.2f} x the plain loop)')


def waiting_share(model_factory, simulate, shapes, batches, processes_list):
    from batch_generator import SimulationBatchGenerator
    for processes in processes_list:
        model = model_factory()
        with SimulationBatchGenerator(simulate, *shapes, batch_size=50,
                                      batches_per_epoch=batches, processes=processes,
                                      queue_capacity=250, check=False) as generator:
            generator.next_batch()  # processes started and the first batch made: not counted
            generator.wait_seconds = 0.0
            tick = time.perf_counter()
            model.train_epoch(generator)
            total = time.perf_counter() - tick
        print(f'training {batches} batches with {processes} simulation process'
              f'{"es" if processes > 1 else ""}: {total:.1f} s, '
              f'{100 * generator.wait_seconds / total:.1f} % of it waiting for simulations')


def cross_entropy(out, y):
    return -(y * torch.log_softmax(out['y_pred_loss'], dim=1)).sum(dim=1).mean()


def l2(out, y):
    return ((y - out) ** 2).sum(dim=1).mean()


def hand_epoch(network, optimizer, batches, loss_function):
    network.train()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(network(x), y)
        loss.backward()
        optimizer.step()
        loss.item()


def step_ratio(name, model, X, Y, rounds, loss_function):
    """Examples/s of ``model.train_epoch`` over ``(X, Y)`` against :func:`hand_epoch`."""
    from batch_generator import MatrixBatchGenerator
    network = copy.deepcopy(model.network)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    generator = MatrixBatchGenerator(X, Y, batch_size=50)
    tensors = [(torch.from_numpy(X[i:i + 50]), torch.from_numpy(Y[i:i + 50]))
               for i in range(0, len(X), 50)]
    core, hand = [], []
    for _ in range(rounds):
        tick = time.perf_counter()
        model.train_epoch(generator)
        core.append(len(X) / (time.perf_counter() - tick))
        tick = time.perf_counter()
        hand_epoch(network, optimizer, tensors, loss_function)
        hand.append(len(X) / (time.perf_counter() - tick))
    core, hand = statistics.median(core[1:]), statistics.median(hand[1:])  # first: warm-up
    print(f'training step, {name}: core {core:.1f} examples/s, hand-written loop {hand:.1f} '
          f'examples/s, ratio {core / hand:.3f} (target >= 0.9)')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='a smoke run: few of everything')
    parser.add_argument('--sims', type=int, default=200)
    parser.add_argument('--wait-batches', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.sims, args.wait_batches, args.rounds = 20, 2, 2
    torch.set_num_threads(args.threads)
    sys.path[:0] = [REPO, HOTSPOT]
    import simulate as hotspot
    from batch_generator import SimulationBatchGenerator
    from models.definetti import DefinettiModel
    from models.exchangeable import ExchangeableNetwork

    def seed_model(spec, shapes, loss='cross-ent'):
        torch.manual_seed(0)
        network = ExchangeableNetwork(*shapes, **spec)
        return DefinettiModel({'network': network, 'loss': loss, 'lr': 1e-3,
                               'accuracy': 'classification' if loss == 'cross-ent' else None},
                              device='cpu')

    shapes = (hotspot.INPUT_SHAPE, hotspot.OUTPUT_SHAPE)
    spec = {'phi_net': [('conv', 5, 32), ('conv', 5, 64)], 'g': ('top_k', 1),
            'h_net': [('fc', 128), ('fc', 128), ('softmax',)]}
    print(f'{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average '
          f'{os.getloadavg()[0]:.1f} at the start (the machine is shared)')
    simulation_rates(hotspot.simulate_hotspot, shapes, args.sims, (1, 2))
    waiting_share(lambda: seed_model(spec, shapes), hotspot.simulate_hotspot, shapes,
                  args.wait_batches, (1, 2))

    with SimulationBatchGenerator(hotspot.simulate_hotspot, *shapes, processes=2,
                                  check=False) as generator:
        X, Y = generator.sample(50 * max(2, args.wait_batches // 2), 'test')
    step_ratio('hotspot network', seed_model(spec, shapes), X, Y, args.rounds, cross_entropy)

    # the Gaussian example's network: small, so the loop's own overhead weighs most
    rng = np.random.default_rng(0)
    n = 50 * (20 if args.quick else 100)
    mu, sigma = rng.beta(5, 10, n), rng.uniform(6, 10, n)
    X = rng.normal(mu[:, None, None], sigma[:, None, None], (n, 100, 1)).astype(np.float32)
    Y = np.stack([mu, sigma], axis=1).astype(np.float32)
    small = {'phi_net': [('fc', 32)], 'g': ('moments', 1, 2), 'h_net': [('fc', 32), ('matmul',)]}
    step_ratio('Gaussian network', seed_model(small, ((100, 1), (2,)), 'l2'), X, Y, args.rounds,
               l2)
    print(f'load average {os.getloadavg()[0]:.1f} at the end')


if __name__ == '__main__':
    main()
