"""Peak memory of ``--vep`` against the size of the VCF: it must not grow with the records.

    nice -n 19 python benchmarks/bench_vep_memory.py [--sizes 100000,1000000] [--batch 512]

A random genome (two chromosomes of 2 Mb), VCFs of the given numbers of records (sorted; 90 %
SNVs, 5 % insertions, 5 % deletions of 1-5 bp, one record in 50 with two ALTs) and a tiny model
(one convolution of 8 filters over 64 bp, two sigmoid outputs; its scoring is cheap, so the
reading, windows and writing dominate) are written to a temporary folder. Each size runs the
command line, in a fresh process:

    main.py -f def.py -d DATA -r RESULT --checkpoint best.pt --vep calls.vcf --genome genome.fa
            --cpu -bs 512 --vep-score diff,log_fold_change,log_odds

and reports that process's peak resident memory (``VmHWM``), its wall time, the rows of the
HDF5 file and the records of the annotated VCF. The peak should be the same for every size
(bounded by the batch, the top-rows heap and the libraries), not proportional to the records.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from measure import peak_rss_mb  # noqa: E402 (benchmarks/ is the script's folder)

CHROM_LENGTH = 2_000_000
DEF = '''
import torch
from torch import nn
from base_model import MultiLabelModel


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.seq_len = 64
        self.conv = nn.Conv1d(4, 8, 9)
        self.linear = nn.Linear(8, 2)

    def forward(self, x):
        return self.linear(torch.relu(self.conv(x)).amax(2))


class Model(MultiLabelModel):
    def init_model(self):
        torch.manual_seed(0)
        network = Net()
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0))


def get_config():
    return {}
'''


def write_genome(folder, rng):
    letters = np.frombuffer(b'ACGT', np.uint8)
    chroms = {name: letters[rng.integers(0, 4, CHROM_LENGTH)].tobytes()
              for name in ('chr1', 'chr2')}
    path = os.path.join(folder, 'genome.fa')
    with open(path, 'wb') as handle:
        for name, seq in chroms.items():
            handle.write(f'>{name}\n'.encode())
            handle.write(b'\n'.join(seq[i:i + 100] for i in range(0, len(seq), 100)) + b'\n')
    return path, chroms


def write_vcf(path, chroms, n, rng):
    """``n`` sorted records, spread over both chromosomes, written a block at a time."""
    other = {65: 'CGT', 67: 'GTA', 71: 'TAC', 84: 'ACG'}
    with open(path, 'w') as handle:
        handle.write('##fileformat=VCFv4.2\n' + ''.join(
            f'##contig=<ID={c},length={CHROM_LENGTH}>\n' for c in chroms) +
            '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
        for name, seq in chroms.items():
            count = n // 2 + (n % 2 if name == 'chr1' else 0)
            positions = np.sort(rng.integers(100, CHROM_LENGTH - 100, count))
            kinds = rng.random(count)
            lines = []
            for k, (pos, kind) in enumerate(zip(positions.tolist(), kinds.tolist())):
                ref = chr(seq[pos - 1])
                if kind < 0.05:
                    alt = ref + 'ACGTA'[:1 + k % 5]
                elif kind < 0.10:
                    ref, alt = seq[pos - 1:pos + 1 + k % 5].decode(), ref
                else:
                    choices = other[seq[pos - 1]]
                    alt = choices[k % 3] + (',' + choices[(k + 1) % 3] if k % 50 == 0 else '')
                lines.append(f'{name}\t{pos}\tv{name}_{k}\t{ref}\t{alt}\t.\t.\t.\n')
                if len(lines) == 100_000:
                    handle.write(''.join(lines))
                    lines = []
            handle.write(''.join(lines))


def child(argv_json):
    """Run the command line in this process; print its peak RSS and timings as JSON."""
    import h5py
    from dlutil import cli
    argv = json.loads(argv_json)
    start = time.perf_counter()
    code = cli.main(argv)
    seconds = time.perf_counter() - start
    assert code == 0, code
    result = argv[argv.index('--result') + 1]
    with h5py.File(os.path.join(result, 'vep', 'calls.h5')) as f:
        rows = len(f['pos'])
    import gzip
    with gzip.open(os.path.join(result, 'vep', 'calls.vcf.gz'), 'rt') as handle:
        records = sum(1 for line in handle if not line.startswith('#'))
    print(json.dumps({'peak_mb': peak_rss_mb(), 'seconds': seconds, 'rows': rows,
                      'records': records,
                      'indexed': os.path.exists(os.path.join(result, 'vep',
                                                             'calls.vcf.gz.tbi'))}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='100000,1000000',
                        help='numbers of VCF records, comma-separated (default: %(default)s)')
    parser.add_argument('--batch', type=int, default=512, help='-bs (default: %(default)s)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    import torch
    from dlutil.search import results
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=os.environ.get('TMPDIR')) as folder:
        genome, chroms = write_genome(folder, rng)
        definition = os.path.join(folder, 'def.py')
        with open(definition, 'w') as handle:
            handle.write(DEF)
        sys.path.insert(0, folder)
        from dlutil.definition import load_module
        model = load_module(definition).Model({}, device='cpu')
        checkpoint = os.path.join(folder, 'best.pt')
        results.save_checkpoint(checkpoint, {'model': model.state_dict(), 'epoch': 1,
                                             'config': {}})
        os.makedirs(os.path.join(folder, 'data'))
        print(f'--vep, tiny model (Conv1d 4->8, 64 bp, 2 sigmoid outputs), -bs {args.batch}, '
              f'scores diff, log_fold_change, log_odds; torch threads: 1')
        print(f'{"records":>10} {"VCF MB":>7} {"rows":>10} {"peak RSS MB":>12} {"seconds":>8} '
              f'{"records/s":>10}')
        for n in (int(size) for size in args.sizes.split(',')):
            vcf = os.path.join(folder, f'calls_{n}', 'calls.vcf')
            os.makedirs(os.path.dirname(vcf))
            write_vcf(vcf, chroms, n, rng)
            argv = ['--model', definition, '--data', os.path.join(folder, 'data'), '--result',
                    os.path.join(folder, f'result_{n}'), '--checkpoint', checkpoint, '--vep',
                    vcf, '--genome', genome, '--cpu', '-bs', str(args.batch), '--threads', '1',
                    '--vep-score', 'diff,log_fold_change,log_odds']
            done = subprocess.run([sys.executable, __file__, '--child', json.dumps(argv)],
                                  capture_output=True, text=True,
                                  env={**os.environ, 'OMP_NUM_THREADS': '1'})
            if done.returncode != 0:
                sys.exit(f'--vep on {n} records failed:\n{done.stderr[-3000:]}')
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result['records'] == n and result['indexed'], result
            print(f'{n:>10,} {os.path.getsize(vcf) / 2 ** 20:>7.0f} {result["rows"]:>10,} '
                  f'{result["peak_mb"]:>12.0f} {result["seconds"]:>8.0f} '
                  f'{n / result["seconds"]:>10,.0f}')
            os.remove(vcf)
    del torch


if __name__ == '__main__':
    main()
