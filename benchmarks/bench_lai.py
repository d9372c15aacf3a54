"""Local ancestry: training throughput against a hand-written loop, and streaming memory.

1. **Throughput.** The recommended network (``WindowLAI``, the example's defaults) trained on a
   random panel (``--haplotypes`` × ``--variants``, in a temporary genotype HDF5 file) two ways,
   epoch by epoch in turn so both see the same machine load:

   - *ours*: ``LocalAncestryModel.train_epoch`` over ``GenotypeBatchGenerator(path, batch_size,
     shuffle=True)``, the loop and generator the CLI uses (the file streamed every epoch);
   - *hand*: the same network class, seed, Adam and loss (cross-entropy + the network's auxiliary
     term) in a plain PyTorch loop over tensors read into memory once, shuffled with
     ``torch.randperm``.

   It prints the median haplotypes × variants per second over the epochs after the first, and
   the ratio ours / hand (target ≥ 0.9).

2. **Peak memory** (``VmHWM``, each in a fresh process):

   - ``prepare vcf`` on a phased VCF of ``--vcf-samples`` samples at two sizes (``--vcf-variants``
     and 4× as many): streaming holds when the peak does not grow with the file;
   - one training epoch (``LocalAncestryModel`` + ``GenotypeBatchGenerator``, batch 8) over a panel
     of ``--big-haplotypes`` × ``--big-variants`` (2 GB by default), several times larger than the
     epoch's peak memory.

    python benchmarks/bench_lai.py                 # about 3 minutes on 2 cores
    python benchmarks/bench_lai.py --big-haplotypes 2000   # a smaller big panel
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
from measure import peak_rss_mb  # noqa: E402
sys.path.insert(0, HERE)
CONFIG = {'network': 'window', 'learning_rate': 3e-3}  # WINDOW_DEFAULTS: the example's network


def write_panel(path, haplotypes, variants, seed=0):
    """A random labelled panel: allele frequencies differ by ancestry (3 ancestries)."""
    from dlutil.genotypes.h5 import GenotypeWriter
    rng = np.random.default_rng(seed)
    labels = np.arange(haplotypes) % 3
    block = max(1000, 20_000_000 // haplotypes)  # bounded memory here too
    with GenotypeWriter(path, [f'h{i}' for i in range(haplotypes)], '1', ['A', 'B', 'C'],
                        haplotype_labels=labels) as writer:
        for start in range(0, variants, block):
            v = min(block, variants - start)
            freq = rng.random((3, v)).astype(np.float32)
            alleles = (rng.random((haplotypes, v), dtype=np.float32) < freq[labels])
            writer.append(np.arange(start, start + v) * 10 + 1, alleles.astype(np.uint8))


def throughput(args, folder):
    import torch
    import torch.nn.functional as F
    from batch_generator import GenotypeBatchGenerator
    from dlutil.genotypes.h5 import IGNORE, open_genotypes
    from models.local_ancestry import LocalAncestryModel, build_network
    torch.set_num_threads(args.threads)
    path = os.path.join(folder, 'panel.h5')
    write_panel(path, args.haplotypes, args.variants)
    info = open_genotypes(path)

    class Model(LocalAncestryModel):
        ancestries, positions = info.ancestries, info.positions

    torch.manual_seed(0)
    model = Model(CONFIG, device='cpu')
    stream = GenotypeBatchGenerator(path, args.batch_size, shuffle=True, seed=0)
    torch.manual_seed(0)
    network = build_network(CONFIG, info.n_variants, 3)
    optimizer = torch.optim.Adam(network.parameters(), lr=CONFIG['learning_rate'])
    x_all, y_all = stream.read_all()
    X, Y = torch.from_numpy(x_all), torch.from_numpy(y_all)
    order_rng = torch.Generator().manual_seed(0)

    def hand_epoch():
        network.train()
        order = torch.randperm(len(X), generator=order_rng)
        for i in range(0, len(X), args.batch_size):
            index = order[i:i + args.batch_size]
            x, y = X[index], Y[index].long()
            optimizer.zero_grad(set_to_none=True)
            logits = network(x)
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE) + network.regularization(y)
            loss.backward()
            optimizer.step()
            loss.item()

    times = {'ours': [], 'hand': []}
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train_epoch(stream)
        times['ours'].append(time.perf_counter() - start)
        start = time.perf_counter()
        hand_epoch()
        times['hand'].append(time.perf_counter() - start)
    work = args.haplotypes * args.variants
    rate = {k: work / np.median(v[1:]) for k, v in times.items()}
    return rate, times


def child_prepare(vcf, out):
    from dlutil.prepare.cli import main
    code = main(['vcf', vcf, '-o', out])
    assert code == 0
    return {'peak_mb': peak_rss_mb()}


def child_epoch(path, batch_size, threads):
    import torch
    from batch_generator import GenotypeBatchGenerator
    from dlutil.genotypes.h5 import open_genotypes
    from models.local_ancestry import LocalAncestryModel
    torch.set_num_threads(threads)
    info = open_genotypes(path)

    class Model(LocalAncestryModel):
        ancestries, positions = info.ancestries, info.positions

    model = Model(CONFIG, device='cpu')
    start = time.perf_counter()
    model.train_epoch(GenotypeBatchGenerator(path, batch_size, shuffle=True, seed=0))
    return {'peak_mb': peak_rss_mb(), 'seconds': time.perf_counter() - start}


def write_vcf(path, samples, variants, seed=0):
    import pysam
    rng = np.random.default_rng(seed)
    codes = np.array(['0|0', '0|1', '1|0', '1|1'])
    plain = path[:-3]
    with open(plain, 'w') as handle:
        handle.write('##fileformat=VCFv4.2\n##contig=<ID=1>\n##FORMAT=<ID=GT,Number=1,'
                     'Type=String,Description="Genotype">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\t'
                     'FILTER\tINFO\tFORMAT\t' + '\t'.join(f's{i}' for i in range(samples)) + '\n')
        for start in range(0, variants, 5000):
            block = codes[rng.integers(0, 4, (min(5000, variants - start), samples))]
            handle.writelines(f'1\t{(start + i) * 10 + 1}\t.\tA\tG\t.\tPASS\t.\tGT\t'
                              + '\t'.join(row) + '\n' for i, row in enumerate(block))
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)


def in_child(function, *arguments):
    code = (f'import json, sys; sys.path[:0] = [{REPO!r}, {HERE!r}]; import bench_lai; '
            f'print(json.dumps(bench_lai.{function}(*{arguments!r})))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f'{function} failed:\n{out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--haplotypes', type=int, default=512)
    parser.add_argument('--variants', type=int, default=20000)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--vcf-samples', type=int, default=200)
    parser.add_argument('--vcf-variants', type=int, default=25000)
    parser.add_argument('--big-haplotypes', type=int, default=10000)
    parser.add_argument('--big-variants', type=int, default=200000)
    args = parser.parse_args(argv)
    from bench_training import busy_cpu_seconds, own_cpu_seconds, print_other_load
    busy0, own0, wall0 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    with tempfile.TemporaryDirectory(dir=os.environ.get('TMPDIR')) as folder:
        rate, times = throughput(args, folder)
        print(f'training throughput, WindowLAI {CONFIG}, {args.haplotypes} haplotypes x '
              f'{args.variants} variants, batch {args.batch_size}, {args.threads} thread(s), '
              f'median of epochs 2-{args.epochs}:')
        print(f'  ours (LocalAncestryModel + GenotypeBatchGenerator): '
              f'{rate["ours"]:,.0f} haplotype-variants/s')
        print(f'  hand-written PyTorch loop (tensors in memory):     '
              f'{rate["hand"]:,.0f} haplotype-variants/s')
        print(f'  ratio ours / hand: {rate["ours"] / rate["hand"]:.3f} (target >= 0.9)')
        for k, n in (('small', args.vcf_variants), ('large', 4 * args.vcf_variants)):
            vcf = os.path.join(folder, f'{k}.vcf.gz')
            write_vcf(vcf, args.vcf_samples, n)
            result = in_child('child_prepare', vcf, os.path.join(folder, f'{k}.h5'))
            print(f'prepare vcf, {args.vcf_samples} samples x {n} variants '
                  f'({os.path.getsize(vcf) / 2 ** 20:.0f} MB bgzipped, '
                  f'{2 * args.vcf_samples * n / 2 ** 20:.0f} MB of genotypes): peak RSS '
                  f'{result["peak_mb"]:.0f} MB')
        big = os.path.join(folder, 'big.h5')
        write_panel(big, args.big_haplotypes, args.big_variants, seed=1)
        size = os.path.getsize(big) / 2 ** 20
        result = in_child('child_epoch', big, 8, args.threads)
        print(f'one training epoch over {args.big_haplotypes} x {args.big_variants} '
              f'({size:.0f} MB panel), batch 8: peak RSS {result["peak_mb"]:.0f} MB, '
              f'{size / result["peak_mb"]:.1f}x smaller than the panel '
              f'({result["seconds"]:.0f} s)')
    busy1, own1 = busy_cpu_seconds(), own_cpu_seconds()
    elapsed = time.perf_counter() - wall0
    if busy0 is not None:
        print_other_load(max(0.0, (busy1 - busy0) - (own1 - own0)), elapsed, 'benchmark')


if __name__ == '__main__':
    main()
