"""The search on a local 2-node Ray cluster against --workers 2, on the same short search.

Starts a Ray head and a second node process on this machine (one CPU each, as two one-core
machines would be), runs the real CLI with ``--ray ADDRESS`` and with ``--workers 2`` on
benchmarks/defs/learning_curve.py (``--busy`` CPU seconds of work per epoch), and prints both
wall times (start-up included; the cluster's own start-up is not), their ratio and whether the
results are identical. The cluster is stopped at the end.

    python benchmarks/bench_ray.py [--epoch 27] [--busy 0.045]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_workers import DEF, outputs  # noqa: E402


def run(tmp, name, extra, args, env):
    result = os.path.join(tmp, name)
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f', DEF, '-d',
                    os.path.join(tmp, 'data'), '-r', result, '-y', '-ep', str(args.epoch),
                    '--seed', '0', '-c', '--threads', '1', *extra],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, outputs(result)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epoch', type=int, default=27, help="Hyperband's R")
    parser.add_argument('--busy', type=float, default=0.045, help='CPU seconds of work per epoch')
    args = parser.parse_args()
    from ray.cluster_utils import Cluster
    env = dict(os.environ, BUSY=str(args.busy), SLEEP='0',
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    os.environ['PYTHONPATH'] = env['PYTHONPATH']  # the cluster's workers import this checkout
    cluster = Cluster(initialize_head=True,
                      head_node_args={'num_cpus': 1, 'include_dashboard': False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, 'data'))
            ray_seconds, ray_out = run(tmp, 'ray', ['--ray', cluster.address], args, env)
            pool_seconds, pool_out = run(tmp, 'workers2', ['--workers', '2'], args, env)
    finally:
        cluster.shutdown()
    epochs = sum(len(v) for k, v in pool_out.items() if k.startswith('t'))
    print(f'search: R={args.epoch}, eta=3, {epochs} trained epochs of {args.busy} CPU s of work')
    print(f'--ray (local cluster, 2 nodes x 1 CPU): {ray_seconds:.1f} s')
    print(f'--workers 2:                            {pool_seconds:.1f} s')
    print(f'ray / workers: {ray_seconds / pool_seconds:.2f}x the time')
    print(f'identical results: {ray_out == pool_out}')


if __name__ == '__main__':
    main()
