"""Variant effect prediction and ISM speed against hand-written batched PyTorch loops.

    python benchmarks/bench_vep.py [--variants 128] [--rounds 3] [--ism-seqs 2] [--ism-span 100]

The model is DeepSEA (``models/deepsea.py``) at 1000 bp with 50 sigmoid outputs and random
weights, on the CPU. A synthetic genome (two chromosomes of 100 kb) and a VCF of random SNVs,
insertions and deletions (a fifth of them indels) are written to a temporary folder.

1. **--vep**: ``score_vcf`` (what ``--vep`` runs: read the VCF, cut and encode both windows,
   score in batches, write the HDF5 file, the top-effects TSV and the annotated, indexed VCF)
   against a loop over the same windows, cut and encoded beforehand and not timed, that runs
   the network on each batch of ref + alt windows, applies the sigmoid and takes alt − ref and
   the log-odds difference (of the logits, in float64, as ``--vep`` computes it). Both use
   batch size 64 (128 windows per forward pass). Rounds alternate between the two; the
   medians are printed. Target: ratio ≥ 0.9.
2. **ISM**: ``dlutil.interpret.attributions.ism`` (tangermeme's saturation mutagenesis) over
   ``--ism-span`` central positions of ``--ism-seqs`` sequences against a loop that builds the
   same 3 × span edited sequences per sequence and runs them in batches of 64.

Timings depend on what else runs on the machine: the script prints how much CPU other processes
used meanwhile.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

from bench_training import busy_cpu_seconds, own_cpu_seconds, print_other_load  # noqa: E402

LENGTH, TASKS, BATCH = 1000, 50, 64


def make_model():
    import base_model
    from models.deepsea import DeepSEA

    class Model(base_model.MultiLabelModel):
        def init_model(self):
            torch.manual_seed(0)
            network = DeepSEA(TASKS, seq_len=LENGTH)
            super().init_model(network, optimizer=torch.optim.SGD(network.parameters(), lr=0))
    return Model({}, device='cpu')


def make_inputs(folder, n_variants, seed=0):
    rng = np.random.default_rng(seed)
    chroms = {name: ''.join(rng.choice(list('ACGT'), 100_000)) for name in ('chr1', 'chr2')}
    genome = os.path.join(folder, 'genome.fa')
    with open(genome, 'w') as handle:
        for name, seq in chroms.items():
            handle.write(f'>{name}\n' + '\n'.join(seq[i:i + 80] for i in range(0, len(seq), 80))
                         + '\n')
    rows = []
    for k in range(n_variants):
        chrom = ('chr1', 'chr2')[k % 2]
        pos = int(rng.integers(1, 99_990))
        ref = chroms[chrom][pos - 1]
        kind = rng.random()
        if kind < 0.1:
            alt = ref + ''.join(rng.choice(list('ACGT'), int(rng.integers(1, 6))))
        elif kind < 0.2:
            ref = chroms[chrom][pos - 1:pos + int(rng.integers(1, 6))]
            alt = ref[0]
        else:
            alt = rng.choice([b for b in 'ACGT' if b != ref])
        rows.append((chrom, pos, f'v{k}', ref, alt))
    rows.sort(key=lambda r: (r[0], r[1]))
    vcf = os.path.join(folder, 'calls.vcf')
    with open(vcf, 'w') as handle:
        handle.write('##fileformat=VCFv4.2\n' + ''.join(
            f'##contig=<ID={c},length=100000>\n' for c in chroms) +
            '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
        handle.writelines('\t'.join(map(str, r)) + '\t.\t.\t.\n' for r in rows)
    return genome, vcf, chroms, rows


def run_vep(model, vcf, genome, folder):
    from dlutil.variants.effects import score_vcf
    start = time.perf_counter()
    counts = score_vcf(model, vcf, genome, os.path.join(folder, 'out.h5'), batch_size=BATCH,
                       progress=False)
    return counts['scored'] / (time.perf_counter() - start)


def encoded_windows(chroms, rows):
    from dlutil.sequences.onehot import encode_batch
    from dlutil.variants.windows import allele_windows
    pairs = [allele_windows(lambda a, b, s=chroms[c]: s[a:b].encode(), len(chroms[c]), pos - 1,
                            ref, alt, LENGTH)[:2] for c, pos, _, ref, alt in rows]
    return encode_batch([p[0] for p in pairs]), encode_batch([p[1] for p in pairs])


@torch.no_grad()
def run_hand(network, x_ref, x_alt):
    start = time.perf_counter()
    for i in range(0, len(x_ref), BATCH):
        x = torch.from_numpy(np.concatenate([x_ref[i:i + BATCH], x_alt[i:i + BATCH]]))
        logits = network(x).double().numpy()
        p = 1 / (1 + np.exp(-logits))
        ref, alt = p[:len(p) // 2], p[len(p) // 2:]
        diff = alt - ref
        log_odds_diff = logits[len(p) // 2:] - logits[:len(p) // 2]  # a sigmoid's log-odds
    del diff, log_odds_diff
    return len(x_ref) / (time.perf_counter() - start)


@torch.no_grad()
def hand_ism(network, X, start, end):
    began = time.perf_counter()
    for x in X:
        y0 = network(torch.from_numpy(x[None]))
        edits = []
        for position in range(start, end):
            for letter in range(4):
                if x[letter, position] == 0:
                    edit = x.copy()
                    edit[:, position] = 0
                    edit[letter, position] = 1
                    edits.append(edit)
        edits = np.stack(edits)
        deltas = [network(torch.from_numpy(edits[i:i + BATCH])) - y0
                  for i in range(0, len(edits), BATCH)]
        torch.cat(deltas)
    return len(X) / (time.perf_counter() - began)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--variants', type=int, default=128)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--ism-seqs', type=int, default=2)
    parser.add_argument('--ism-span', type=int, default=100)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = make_model()
    network = model.network.eval()
    print(f'DeepSEA, {LENGTH} bp, {TASKS} outputs, CPU, {args.threads} torch thread(s), batch '
          f'{BATCH} variants (= {2 * BATCH} windows per forward pass)')
    with tempfile.TemporaryDirectory() as folder:
        genome, vcf, chroms, rows = make_inputs(folder, args.variants)
        x_ref, x_alt = encoded_windows(chroms, rows)
        run_hand(network, x_ref[:BATCH], x_alt[:BATCH])  # warm-up
        vep, hand = [], []
        busy, own, wall = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        for _ in range(args.rounds):
            vep.append(run_vep(model, vcf, genome, folder))
            hand.append(run_hand(network, x_ref, x_alt))
        elapsed = time.perf_counter() - wall
        foreign = None if busy is None else \
            busy_cpu_seconds() - busy - (own_cpu_seconds() - own)
    v, h = statistics.median(vep), statistics.median(hand)
    print(f'--vep       {v:8.1f} variants/s  (rounds: {", ".join(f"{r:.1f}" for r in vep)})')
    print(f'hand loop   {h:8.1f} variants/s  (rounds: {", ".join(f"{r:.1f}" for r in hand)})')
    print(f'ratio --vep / hand = {v / h:.3f}  (target >= 0.9)')
    print_other_load(foreign, elapsed, 'variant rounds')

    from dlutil.interpret.attributions import ism
    rng = np.random.default_rng(1)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.ism_seqs, LENGTH))]
    X = np.ascontiguousarray(X.transpose(0, 2, 1))
    start = LENGTH // 2 - args.ism_span // 2
    end = start + args.ism_span
    ism(model, X[:1], batch_size=BATCH, start=start, end=start + 2)  # warm-up: imports
    hand_ism(network, X[:1], start, start + 2)
    busy, own, wall = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    began = time.perf_counter()
    ism(model, X, batch_size=BATCH, start=start, end=end)
    mine = args.ism_seqs / (time.perf_counter() - began)
    theirs = hand_ism(network, X, start, end)
    elapsed = time.perf_counter() - wall
    foreign = None if busy is None else busy_cpu_seconds() - busy - (own_cpu_seconds() - own)
    print(f'ISM over {args.ism_span} positions ({3 * args.ism_span} edits) per sequence:')
    print(f'ism()       {mine:8.3f} sequences/s')
    print(f'hand loop   {theirs:8.3f} sequences/s')
    print(f'ratio ism / hand = {mine / theirs:.3f}  (target >= 0.9)')
    print_other_load(foreign, elapsed, 'ISM runs')


if __name__ == '__main__':
    main()
