"""Write a synthetic multi-label DNA data set: motifs planted per task, as FASTA + a labels TSV.

    python3 make_data.py [--out raw_data] [--n 8000] [--length 216] [--seed 0]

Writes ``OUT/sequences.fa`` (FASTA, ``>seq_000000`` then the sequence) and ``OUT/labels.tsv``
(a header row ``name<TAB>ctcf<TAB>ap1<TAB>gata<TAB>nrf1``, then one row per sequence: its name
and a 0/1 label per task), the input of ``python -m dlutil.prepare fasta ... --labels ... --task multilabel``.

Sequences are uniform random A/C/G/T. Each task is positive in a sequence with probability
``--positive-rate``, independently of the other tasks; a positive sequence carries one copy of
one of the task's motifs (chosen at random, on either strand, at a random position, each base
mutated with probability ``--mutation-rate``). The motifs are consensus-like k-mers of four
transcription factors, long enough (9-14 bp) that random sequence rarely holds one by chance.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BASES = np.array(list('ACGT'))
#: task -> its motifs; a positive sequence carries one of them
MOTIFS = {
    'ctcf': ('CCGCGAGGTGGCAG', 'CCACCAGGGGGCGC'),
    'ap1': ('ATGACTCAT', 'GGTGACTCACC'),
    'gata': ('AGATAAGGCA', 'TGATAAGAGC'),
    'nrf1': ('GCGCATGCGC', 'TGCGCACGCGCA'),
}


def codes(motif):
    return np.array(['ACGT'.index(base) for base in motif])


def make_sequences(n, length, positive_rate=0.3, mutation_rate=0.0, seed=0):
    """``n`` random sequences with motifs planted for the tasks they are positive in.

    Returns
    -------
    (sequences, labels): list of str; numpy.ndarray of int, shape=(n, len(MOTIFS))
    """
    # room for one motif per task, with space around them (rejection sampling stays quick)
    room = 2 * sum(max(len(m) for m in motifs) for motifs in MOTIFS.values())
    if length < room:
        raise ValueError(f'--length must be at least {room} bp so that one motif of each of the '
                         f'{len(MOTIFS)} tasks fits with room to spare, got {length}')
    if not 0 < positive_rate < 1 or not 0 <= mutation_rate <= 1:
        raise ValueError(f'--positive-rate must lie in (0, 1) and --mutation-rate in [0, 1], '
                         f'got {positive_rate} and {mutation_rate}')
    rng = np.random.default_rng(seed)
    letters = rng.integers(0, 4, size=(n, length))
    labels = (rng.random((n, len(MOTIFS))) < positive_rate).astype(np.int64)
    all_motifs = [[codes(m) for m in motifs] for motifs in MOTIFS.values()]
    for row in range(n):
        taken = np.zeros(length, dtype=bool)  # copies never overlap
        for task in np.flatnonzero(labels[row]):
            site = all_motifs[task][rng.integers(len(all_motifs[task]))]
            if rng.random() < 0.5:  # the reverse complement: the other strand
                site = 3 - site[::-1]
            mutated = rng.random(len(site)) < mutation_rate
            site = np.where(mutated, (site + rng.integers(1, 4, size=len(site))) % 4, site)
            start = rng.integers(0, length - len(site) + 1)
            while taken[start:start + len(site)].any():
                start = rng.integers(0, length - len(site) + 1)
            taken[start:start + len(site)] = True
            letters[row, start:start + len(site)] = site
    return [''.join(row) for row in BASES[letters]], labels


def write(out_dir, sequences, labels):
    """``out_dir/sequences.fa`` and ``out_dir/labels.tsv``."""
    os.makedirs(out_dir, exist_ok=True)
    names = [f'seq_{i:06d}' for i in range(len(sequences))]
    with open(os.path.join(out_dir, 'sequences.fa'), 'w') as fasta:
        fasta.writelines(f'>{name}\n{seq}\n' for name, seq in zip(names, sequences))
    with open(os.path.join(out_dir, 'labels.tsv'), 'w') as tsv:
        tsv.write('\t'.join(['name', *MOTIFS]) + '\n')
        tsv.writelines('\t'.join([name, *map(str, row)]) + '\n'
                       for name, row in zip(names, labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join(HERE, 'raw_data'),
                        help='output folder (default: raw_data/ beside this script)')
    parser.add_argument('--n', type=int, default=8000, help='sequences (default: %(default)s)')
    parser.add_argument('--length', type=int, default=216,
                        help='bases per sequence (default: %(default)s; 1000 for the full size)')
    parser.add_argument('--positive-rate', type=float, default=0.3,
                        help='probability that a task is positive (default: %(default)s)')
    parser.add_argument('--mutation-rate', type=float, default=0.0,
                        help='probability that a planted base is mutated (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        sequences, labels = make_sequences(args.n, args.length, args.positive_rate,
                                           args.mutation_rate, args.seed)
    except ValueError as error:
        print(f'make_data.py: {error}', file=sys.stderr)
        return 1
    write(args.out, sequences, labels)
    print(f'{args.out}: {len(sequences)} sequences of {args.length} bp; positives per task: '
          + ', '.join(f'{task} {count}' for task, count in zip(MOTIFS, labels.sum(axis=0))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
