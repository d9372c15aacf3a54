"""Does the pysster example recover its planted motifs?

Makes pysster's artificial tutorial data (examples/pysster/make_data.py: poly-C/poly-G blocks in
class a, poly-A/poly-T blocks in class b, random class c), runs the real CLI with
``-y -e --interpret``, reads ``interpret/motifs.meme`` and prints, for each planted motif, the
best match among the reported motifs: the mean probability the motif's PWM gives the planted
letters at the best alignment (1.0 a perfect match), with the motif's rank by importance.

The score is a maximum over ~100 motifs and every shift, so its chance level is far above the
0.25 of one random position (a C-rich kernel matches CCCCCCCCCC). Its null is the same statistic
on the same motifs with the letters of every column shuffled (``--shuffles`` times): each motif
keeps its widths and its columns' information content but loses which letter each column
prefers. Printed: the null's median and 95th percentile, and the empirical p-value of the
observed score.

    python benchmarks/bench_pysster_motifs.py [--epoch 9] [-n 1000] [--shuffles 200] [--keep DIR]
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

sys.path.insert(0, ROOT)
from dlutil.interpret.modisco import read_meme_motifs  # noqa: E402  (memelite's reader)


def best_match(planted, motifs):
    """``(score, importance rank, name)`` of the reported motif that matches best."""
    return max((match(planted, pwm), rank, name)
               for rank, (name, pwm) in enumerate(motifs.items(), 1))


def null_scores(planted, motifs, shuffles, seed=0):
    """The best-match score over letter-shuffled copies of every motif, ``shuffles`` times."""
    rng = np.random.default_rng(seed)
    return np.array([best_match(planted, {name: rng.permuted(pwm, axis=0)
                                          for name, pwm in motifs.items()})[0]
                     for _ in range(shuffles)])


def match(planted, pwm, alphabet='ACGT'):
    """Best mean probability of the planted letters over alignments of the shorter in the
    longer; ``pwm`` shape=(letters, width)."""
    pwm = pwm.T
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
    parser.add_argument('--shuffles', type=int, default=200, help='null draws (default 200)')
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
    motifs = read_meme_motifs(os.path.join(result, 'interpret', 'motifs.meme'))
    print(f'{len(motifs)} motifs reported (most important first) in '
          f'{os.path.join(result, "interpret", "motifs.meme")}')
    for cls, blocks in make_data.PLANTED.items():
        for planted, offset in blocks:
            score, rank, name = best_match(planted, motifs)
            null = null_scores(planted, motifs, args.shuffles)
            p_value = (1 + int((null >= score).sum())) / (1 + len(null))
            print(f'{cls:16s} {planted} (offset {offset:+d}): best match {name} (importance '
                  f'rank {rank}), mean probability of the planted letters {score:.3f}; '
                  f'letter-shuffled null median {np.median(null):.3f}, 95th percentile '
                  f'{np.quantile(null, 0.95):.3f}, p = {p_value:.3f}')


if __name__ == '__main__':
    main()
