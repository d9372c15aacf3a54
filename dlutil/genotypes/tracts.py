"""Ancestry tracts: runs of one call along a haplotype, as a TSV and as a plot.

The TSV has a header and one row per tract::

    haplotype   chromosome  start   end     ancestry    n_variants
    s1_A        1           1042    882107  AFR         1210

``start`` and ``end`` are the 1-based positions of the tract's first and last variant (both
included), so tracts of one haplotype never overlap and their variants add up to all variants.
"""
import numpy as np

from dlutil.files import atomic_write

COLUMNS = ('haplotype', 'chromosome', 'start', 'end', 'ancestry', 'n_variants')


def runs(calls):
    """Runs of equal values: ``(first, last, value)`` index triples, last included.

    Parameters
    ----------
    calls: numpy.ndarray, shape=(variants,)
    """
    calls = np.asarray(calls)
    if calls.size == 0:
        return []
    change = np.flatnonzero(calls[1:] != calls[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(calls)]]) - 1
    return [(int(a), int(b), calls[a]) for a, b in zip(starts, stops)]


def tracts(calls, positions, haplotypes, ancestries, chromosome=''):
    """Tract rows ``(haplotype, chromosome, start, end, ancestry, n_variants)``.

    Parameters
    ----------
    calls: numpy.ndarray, int, shape=(haplotypes, variants)
    positions: numpy.ndarray, shape=(variants,)
    haplotypes, ancestries: list of str
    """
    calls = np.asarray(calls)
    positions = np.asarray(positions)
    if calls.ndim != 2 or calls.shape != (len(haplotypes), len(positions)):
        raise ValueError(f'calls have shape {calls.shape}; expected ({len(haplotypes)} '
                         f'haplotypes, {len(positions)} variants)')
    rows = []
    for name, row in zip(haplotypes, calls):
        for first, last, value in runs(row):
            rows.append((name, chromosome, int(positions[first]), int(positions[last]),
                         ancestries[int(value)], last - first + 1))
    return rows


def write_tracts(path, calls, positions, haplotypes, ancestries, chromosome=''):
    """Write the tracts TSV atomically; returns the number of tracts."""
    rows = tracts(calls, positions, haplotypes, ancestries, chromosome)

    def write(handle):
        handle.write('\t'.join(COLUMNS) + '\n')
        for row in rows:
            handle.write('\t'.join(map(str, row)) + '\n')

    atomic_write(path, write)
    return len(rows)


def plot_tracts(path, calls, positions, haplotypes, ancestries, truth=None, max_haplotypes=8,
                title=None):
    """A PNG of the tracts of the first ``max_haplotypes`` haplotypes along the chromosome.

    Parameters
    ----------
    calls: numpy.ndarray, int, shape=(haplotypes, variants)
    truth: numpy.ndarray or None
        True labels of the same shape (IGNORE-free): drawn as a thin bar under each haplotype.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    calls = np.asarray(calls)[:max_haplotypes]
    positions = np.asarray(positions, dtype=np.float64)
    n = len(calls)
    colours = plt.get_cmap('tab10' if len(ancestries) <= 10 else 'tab20')
    # each variant covers up to the midpoint to its neighbours
    mids = (positions[1:] + positions[:-1]) / 2
    left = np.concatenate([[positions[0]], mids])
    right = np.concatenate([mids, [positions[-1]]])
    scale = 1e6 if positions[-1] > 1e6 else 1.0
    fig, ax = plt.subplots(figsize=(10, 0.45 * n + 1.3))
    for i, row in enumerate(calls):
        for rows, y0, height in (([row], i, 0.62),) if truth is None else (
                ([row], i, 0.5), ([np.asarray(truth)[i]], i + 0.52, 0.18)):
            for first, last, value in runs(rows[0]):
                ax.broken_barh([(left[first] / scale, (right[last] - left[first]) / scale)],
                               (y0, height), facecolors=colours(int(value)))
    ax.set_yticks(np.arange(n) + 0.35)
    ax.set_yticklabels(list(haplotypes)[:n])
    ax.invert_yaxis()
    ax.set_xlabel('position (Mb)' if scale == 1e6 else 'position')
    ax.set_xlim(left[0] / scale, right[-1] / scale)
    handles = [Patch(color=colours(i), label=a) for i, a in enumerate(ancestries)]
    ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title(title or ('called ancestry' + ('' if truth is None else
                                                 ' (thin bar below: true ancestry)')))
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=110), mode='wb')
    plt.close(fig)
    return path


__all__ = ['runs', 'tracts', 'write_tracts', 'plot_tracts', 'COLUMNS']
