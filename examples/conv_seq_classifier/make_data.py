"""Write a synthetic DNA classification data set with a planted motif.

    python3 make_data.py [--out raw_data] [--seed 0] [--train 2000 --valid 500 --test 500]

Writes ``OUT/{train,valid,test}.fa`` (FASTA, two lines per record: ``>name`` then the sequence)
and ``OUT/{train,valid,test}.target`` (one 0/1 label per line, same order). Sequences are uniform
random A/C/G/T. Half of them, the positives (label 1), carry one copy of ``--motif`` (default
TGACGTCA, the cAMP response element bound by CREB) at a random position, each of its bases
mutated with probability ``--mutation-rate``. Every base of every sequence is then replaced by
'N' with probability ``--n-rate``, as in real genomic windows.
"""
import argparse
import os
import sys

import numpy as np

BASES = np.array(list('ACGT'))
HERE = os.path.dirname(os.path.abspath(__file__))


def make_split(n, length, motif, mutation_rate, n_rate, rng):
    """``n`` sequences and labels, exactly ``n // 2`` positives in random order.

    Returns
    -------
    (sequences, labels): list of str, numpy.ndarray of int, shape=(n,)
    """
    codes = rng.integers(0, 4, size=(n, length))
    labels = np.zeros(n, dtype=np.int64)
    labels[:n // 2] = 1
    rng.shuffle(labels)
    motif_codes = np.array(['ACGT'.index(base) for base in motif])
    for row in np.flatnonzero(labels):
        site = motif_codes.copy()
        mutated = rng.random(len(site)) < mutation_rate
        # a mutation changes the base: add 1-3 modulo 4
        site[mutated] = (site[mutated] + rng.integers(1, 4, size=mutated.sum())) % 4
        start = rng.integers(0, length - len(site) + 1)
        codes[row, start:start + len(site)] = site
    letters = BASES[codes]
    letters[rng.random((n, length)) < n_rate] = 'N'
    return [''.join(row) for row in letters], labels


def write_split(out_dir, split, sequences, labels):
    with open(os.path.join(out_dir, f'{split}.fa'), 'w') as fasta:
        for i, sequence in enumerate(sequences):
            fasta.write(f'>{split}_{i:06d}\n{sequence}\n')
    with open(os.path.join(out_dir, f'{split}.target'), 'w') as target:
        target.writelines(f'{label}\n' for label in labels)


def make_dataset(out_dir, sizes=(('train', 2000), ('valid', 500), ('test', 500)), length=101,
                 motif='TGACGTCA', mutation_rate=0.1, n_rate=0.002, seed=0):
    """Write every split of ``sizes`` (pairs of name and number of sequences) into ``out_dir``."""
    motif = motif.upper()
    if not motif or set(motif) - set('ACGT'):
        raise ValueError(f'--motif must be made of A, C, G, T, got {motif!r}')
    if length < len(motif):
        raise ValueError(f'--length {length} is shorter than the motif ({len(motif)} bp)')
    if not 0 <= mutation_rate <= 1 or not 0 <= n_rate <= 1:
        raise ValueError(f'--mutation-rate and --n-rate must lie in [0, 1], got '
                         f'{mutation_rate} and {n_rate}')
    for split, n in sizes:
        if n < 2:
            raise ValueError(f'--{split} must be at least 2 sequences, got {n}')
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in sizes:
        sequences, labels = make_split(n, length, motif, mutation_rate, n_rate, rng)
        write_split(out_dir, split, sequences, labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join(HERE, 'raw_data'),
                        help='output folder (default: raw_data/ beside this script)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train', type=int, default=2000, help='sequences (default: 2000)')
    parser.add_argument('--valid', type=int, default=500, help='sequences (default: 500)')
    parser.add_argument('--test', type=int, default=500, help='sequences (default: 500)')
    parser.add_argument('--length', type=int, default=101, help='bp (default: 101)')
    parser.add_argument('--motif', default='TGACGTCA', help='planted motif (default: TGACGTCA)')
    parser.add_argument('--mutation-rate', type=float, default=0.1,
                        help='per-base mutation probability of a planted motif (default: 0.1)')
    parser.add_argument('--n-rate', type=float, default=0.002,
                        help="per-base probability of an 'N' (default: 0.002)")
    args = parser.parse_args(argv)
    try:
        make_dataset(args.out, (('train', args.train), ('valid', args.valid),
                                ('test', args.test)), args.length, args.motif,
                     args.mutation_rate, args.n_rate, args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(f'wrote {args.train}/{args.valid}/{args.test} sequences of {args.length} bp to '
          f'{args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
