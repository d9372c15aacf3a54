"""Does the pysster example recover its planted motifs?

Makes pysster's artificial tutorial data (examples/pysster/make_data.py: poly-C/poly-G blocks in
class a, poly-A/poly-T blocks in class b, random class c), runs the real CLI with
``-y -e --interpret``, reads ``interpret/motifs.meme`` and prints, for each planted motif, the
best match among the reported motifs: the mean probability the motif's PWM gives the planted
letters at the best alignment (1.0 a perfect match, 0.25 chance for DNA), with the motif's rank
by importance.

    python benchmarks/bench_pysster_motifs.py [--epoch 9] [-n 1000] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, 'examples', 'pysster')
sys.path.insert(0, EXAMPLE)

import make_data  # noqa: E402  (the example's own data maker)


def read_meme(path):
    """``[(name, alphabet, pwm)]`` of a MEME version 4 file, in file order."""
    lines = open(path).read().splitlines()
    alphabet, motifs, i = 'ACGT', [], 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith('ALPHABET='):
            alphabet = line.split('=', 1)[1].strip()
        elif line.startswith('MOTIF'):
            name = line.split()[1]
            while not lines[i].startswith('letter-probability matrix'):
                i += 1
            width = int(lines[i].split('w=')[1].split()[0])
            rows = [[float(v) for v in lines[i + 1 + k].split()] for k in range(width)]
            motifs.append((name, alphabet, np.array(rows)))
            i += width
        i += 1
    return motifs


def match(planted, alphabet, pwm):
    """Best mean probability of the planted letters over alignments of the shorter in the longer."""
    index = [alphabet.index(letter) for letter in planted]
    width, size = len(pwm), len(planted)
    best = 0.0
    for shift in range(-(size - 1), width):
        pairs = [(shift + j, index[j]) for j in range(size) if 0 <= shift + j < width]
        if len(pairs) < min(size, width):
            continue
        best = max(best, float(np.mean([pwm[p, c] for p, c in pairs])))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epoch', type=int, default=9)
    parser.add_argument('-n', type=int, default=1000, help='sequences per class')
    parser.add_argument('--keep', help='work in this folder and keep it')
    args = parser.parse_args()
    work = args.keep or tempfile.mkdtemp()
    data, result = os.path.join(work, 'data'), os.path.join(work, 'results')
    if not os.path.exists(os.path.join(data, 'predict')):
        make_data.make_data(data, n=args.n)
    subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f',
                    os.path.join(EXAMPLE, 'def.py'), '-d', data, '-r', result, '-y', '-e',
                    '--interpret', '-ep', str(args.epoch), '--seed', '0', '-c', '--threads', '1'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    motifs = read_meme(os.path.join(result, 'interpret', 'motifs.meme'))
    print(f'{len(motifs)} motifs reported (most important first) in '
          f'{os.path.join(result, "interpret", "motifs.meme")}')
    for cls, blocks in make_data.PLANTED.items():
        for planted, offset in blocks:
            scores = [(match(planted, alphabet, pwm), rank, name)
                      for rank, (name, alphabet, pwm) in enumerate(motifs, 1)]
            score, rank, name = max(scores)
            print(f'{cls:16s} {planted} (offset {offset:+d}): best match {name} '
                  f'(importance rank {rank}), mean probability of the planted letters {score:.3f}')


if __name__ == '__main__':
    main()
