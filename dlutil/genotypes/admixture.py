"""deepLAI's naive admixture simulation: new haplotypes stitched from founders of a batch.

For each generation g of ``generations`` (deepLAI: 1 and 2), ``n // (max(generations) + 1)`` new
haplotypes are made (a third of the batch each, for deepLAI's defaults), each cut at
``min_breaks + Poisson(rate · g)`` breakpoints (deepLAI: 2 + Poisson(2.86 g)) drawn uniformly
along the variants (or, with a genetic map, uniformly in genetic distance); the segments between
breakpoints come from founders drawn at random, with replacement, from the batch, and the labels
follow the segments. The new haplotypes are appended to the batch.
"""
import numpy as np


class Admixer:
    """Naive admixture on the fly, seeded by the caller's ``numpy.random.Generator``.

    Parameters
    ----------
    generations: sequence of int
        The generations simulated, each a share ``1 / (max + 1)`` of the batch.
    rate: float
        Poisson mean of the extra breakpoints per generation.
    min_breaks: int
        Breakpoints every new haplotype has at least.
    genetic_map: array of float, shape=(variants,), or None
        Genetic position (cM, non-decreasing) of every variant: breakpoints are then uniform in
        genetic distance rather than in variant index.
    """

    def __init__(self, generations=(1, 2), rate=2.86, min_breaks=2, genetic_map=None):
        generations = [int(g) for g in generations]
        if not generations or min(generations) < 1:
            raise ValueError(f'generations must be positive integers, got {generations}')
        if rate < 0 or min_breaks < 0:
            raise ValueError(f'rate and min_breaks must be >= 0, got {rate}, {min_breaks}')
        self.generations, self.rate, self.min_breaks = generations, float(rate), int(min_breaks)
        self.genetic_map = None
        if genetic_map is not None:
            cm = np.asarray(genetic_map, dtype=np.float64)
            if cm.ndim != 1 or np.any(np.diff(cm) < 0) or cm[-1] <= cm[0]:
                raise ValueError('genetic_map must be non-decreasing cM positions, one per '
                                 'variant, spanning a positive distance')
            self.genetic_map = cm

    def n_new(self, n):
        """How many haplotypes a batch of ``n`` founders gains."""
        return len(self.generations) * (n // (max(self.generations) + 1))

    def breakpoints(self, rng, n_variants, count):
        """``count`` sorted breakpoints in (0, n_variants), as variant indices."""
        if self.genetic_map is None:
            return np.sort((rng.random(count) * n_variants).astype(np.int64))
        cm = self.genetic_map
        if len(cm) != n_variants:
            raise ValueError(f'the genetic map has {len(cm)} positions for {n_variants} '
                             f'variants')
        where = cm[0] + rng.random(count) * (cm[-1] - cm[0])
        return np.sort(np.searchsorted(cm, where).astype(np.int64))

    def __call__(self, x, y, rng, return_segments=False):
        """Append admixed haplotypes to a batch.

        Parameters
        ----------
        x: numpy.ndarray, shape=(n, variants)
            Founder haplotypes (alleles).
        y: numpy.ndarray, shape=(n, variants)
            Their per-variant labels.
        rng: numpy.random.Generator
        return_segments: bool
            Also return, per new haplotype, ``(breaks, founders)``: the breakpoints and the
            founder row of each of the ``len(breaks) + 1`` segments.

        Returns
        -------
        (x, y): shape=(n + n_new(n), variants), the founders first
        """
        n, length = x.shape[:2]
        per_generation = n // (max(self.generations) + 1)
        if per_generation == 0:
            return (x, y, []) if return_segments else (x, y)
        counts = np.concatenate([self.min_breaks + rng.poisson(self.rate * g, per_generation)
                                 for g in self.generations])
        new_x = np.empty((len(counts),) + x.shape[1:], x.dtype)
        new_y = np.empty((len(counts),) + y.shape[1:], y.dtype)
        segments = []
        for i, count in enumerate(counts):
            breaks = self.breakpoints(rng, length, int(count))
            founders = rng.integers(0, n, size=len(breaks) + 1)
            edges = np.concatenate([[0], breaks, [length]])
            for founder, start, stop in zip(founders, edges[:-1], edges[1:]):
                new_x[i, start:stop] = x[founder, start:stop]
                new_y[i, start:stop] = y[founder, start:stop]
            segments.append((breaks, founders))
        x, y = np.concatenate([x, new_x]), np.concatenate([y, new_y])
        return (x, y, segments) if return_segments else (x, y)


def read_genetic_map(path, positions):
    """Genetic positions (cM) of ``positions`` from a map file, linearly interpolated.

    The file is tab- or space-separated with a position (bp) and a genetic position (cM) per
    line: two columns ``position cM``, or PLINK ``.map`` / four columns ``chrom id cM position``
    (the cM column is the third, the position the fourth); a header line is skipped. Positions
    outside the map get the genetic position of its nearest end.

    Returns
    -------
    numpy.ndarray, float64, shape=(len(positions),)
    """
    rows = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields or line.startswith('#'):
                continue
            try:
                if len(fields) == 2:
                    rows.append((float(fields[0]), float(fields[1])))
                elif len(fields) >= 4:
                    rows.append((float(fields[3]), float(fields[2])))
                else:
                    raise ValueError
            except ValueError:
                if number == 1 and not rows:
                    continue  # a header
                raise ValueError(f'{path}, line {number}: expected "position cM" or "chrom id '
                                 f'cM position", got {line.strip()!r}') from None
    if len(rows) < 2:
        raise ValueError(f'{path}: a genetic map needs at least two positions')
    bp, cm = np.array(rows).T
    order = np.argsort(bp)
    return np.interp(np.asarray(positions, dtype=np.float64), bp[order], cm[order])


__all__ = ['Admixer', 'read_genetic_map']
