"""pysster's artificial tutorial data: two classes with planted homopolymer blocks, one random.

    python3 make_data.py --out data

Three FASTA files, one class each (the def.py orders classes by file name):

- ``class_a_polyCG.fa``: a poly-C block 40 nt before the sequence's middle, a poly-G block
  20 nt after it;
- ``class_b_polyAT.fa``: a poly-A block 20 nt before the middle, a poly-T block 40 nt after it;
- ``class_c_random.fa``: random sequences (the negatives).

Sequences are uniform random DNA of 100 to 300 nt. The blocks sit at fixed positions relative
to the middle (``length // 2 + offset``), as binding sites sit relative to the summit of a
CLIP-seq peak, and the def.py centres sequences of unequal length, so they line up. Each block
is 10 nt long, and each of its bases is replaced by a random base with probability
``--mutation-rate`` (0.1), so the blocks are not always perfect. ``predict/sample.fa`` holds
fresh sequences of all three classes (their true class is the last word of each header) for
``-p 'predict/*.fa'``.

:data:`PLANTED` lists the planted motifs and positions, e.g. for checking the motifs an
interpretation recovers: ``(motif, offset from the middle)``.
"""
import argparse
import os

import numpy as np

BLOCK = 10
PLANTED = {
    'class_a_polyCG': [('C' * BLOCK, -40), ('G' * BLOCK, 20)],
    'class_b_polyAT': [('A' * BLOCK, -20), ('T' * BLOCK, 40)],
    'class_c_random': [],
}


def make_sequence(rng, blocks, min_length, max_length, mutation_rate):
    """One random DNA sequence carrying ``blocks`` ([(motif, offset from the middle)])."""
    length = int(rng.integers(min_length, max_length + 1))
    letters = rng.choice(list('ACGT'), size=length)
    for motif, offset in blocks:
        position = length // 2 + offset
        block = np.array(list(motif))
        mutated = rng.random(len(block)) < mutation_rate
        block[mutated] = rng.choice(list('ACGT'), size=int(mutated.sum()))
        letters[position:position + len(block)] = block
    return ''.join(letters)


def write_fasta(path, records):
    with open(path, 'w') as handle:
        for name, sequence in records:
            handle.write(f'>{name}\n')
            for start in range(0, len(sequence), 60):  # wrapped, as FASTA files often are
                handle.write(sequence[start:start + 60] + '\n')


def make_data(out, n=1000, n_predict=30, min_length=100, max_length=300, mutation_rate=0.1,
              seed=0):
    """Write the class files and ``predict/sample.fa`` under ``out``; returns their paths."""
    reach = max(abs(offset) + BLOCK for blocks in PLANTED.values() for _, offset in blocks)
    if min_length < 2 * reach:
        raise ValueError(f'--min-length {min_length} is too short for the planted blocks '
                         f'(at least {2 * reach})')
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, 'predict'), exist_ok=True)
    paths, predict = [], []
    for name, blocks in PLANTED.items():
        records = [(f'{name}_{i:05d}', make_sequence(rng, blocks, min_length, max_length,
                                                    mutation_rate)) for i in range(n)]
        paths.append(os.path.join(out, f'{name}.fa'))
        write_fasta(paths[-1], records)
        predict += [(f'sample_{name}_{i:03d} {name}',
                     make_sequence(rng, blocks, min_length, max_length, mutation_rate))
                    for i in range(n_predict)]
    paths.append(os.path.join(out, 'predict', 'sample.fa'))
    write_fasta(paths[-1], predict)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data', help='output folder (default: data)')
    parser.add_argument('-n', type=int, default=1000, help='sequences per class (1000)')
    parser.add_argument('--n-predict', type=int, default=30,
                        help='sequences per class in predict/sample.fa (30)')
    parser.add_argument('--min-length', type=int, default=100)
    parser.add_argument('--max-length', type=int, default=300)
    parser.add_argument('--mutation-rate', type=float, default=0.1,
                        help='chance that a base of a planted block is random (0.1)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for path in make_data(args.out, args.n, args.n_predict, args.min_length, args.max_length,
                          args.mutation_rate, args.seed):
        print(path)


if __name__ == '__main__':
    main()
