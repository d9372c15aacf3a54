"""Motifs from attributions: TF-MoDISco (modisco-lite) seqlets and patterns, matched to a MEME
motif database with TOMTOM (memelite).

    motifs = find_motifs(X, hypothetical)         # X, hypothetical: (n, 4, L)
    write_meme([m['motif'] for m in motifs], 'modisco.meme')
    matches = match_motifs(motifs, 'JASPAR2024_CORE.meme')

TF-MoDISco (Shrikumar et al. 2018; modisco-lite, Schreiber's rewrite) cuts high-attribution
stretches (seqlets) out of the attribution tracks, clusters them and aggregates each cluster into
a pattern: its letter frequencies (a PWM) and its mean contribution. Each pattern is returned
trimmed to the positions that carry at least ``trim`` of its largest per-position contribution.
The first call in a process compiles modisco-lite's numba kernels (about a minute).
"""
import numpy as np

from dlutil import extras
from dlutil.interpret.motif import PSEUDOCOUNT, Motif

__all__ = ['find_motifs', 'match_motifs', 'read_meme_motifs']


def _trimmed(contrib, trim):
    """[start, end) of the positions whose |contribution| reaches ``trim`` of the largest."""
    weight = np.abs(contrib).sum(1)
    keep = np.flatnonzero(weight >= trim * weight.max())
    return int(keep[0]), int(keep[-1]) + 1


def find_motifs(X, hypothetical, alphabet='ACGT', window=21, flank=None, max_seqlets=2000,
                leiden_runs=8, trim=0.3, **options):
    """TF-MoDISco patterns of attributions.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, 4, L)
        One-hot sequences.
    hypothetical: numpy.ndarray, shape=(n, 4, L)
        Hypothetical contributions of every letter (``deep_lift_shap(..., hypothetical=True)``).
    window, flank: int
        modisco-lite's ``sliding_window_size`` and ``flank_size``: the width over which
        attributions are summed to call seqlets, and the letters added on each side (default
        ``window // 2``). Its pattern trimming is scaled to them: ``trim_to_window_size`` =
        min(30, window + flank) and ``initial_flank_to_add`` = min(10, flank), modisco-lite's
        defaults at window 21 (a trimming window wider than the seqlets finds nothing).
    max_seqlets: int
        ``max_seqlets_per_metacluster``.
    leiden_runs: int
        Leiden clusterings per metacluster (modisco-lite's default is 50; more is steadier).
    trim: float
        Positions kept: those with at least this fraction of the largest contribution.
    **options
        Passed on to ``modiscolite.tfmodisco.TFMoDISco``.

    Returns
    -------
    list of dict, positive patterns first: ``name`` ('pos_0', 'neg_1', ...), ``motif`` (a
    :class:`~dlutil.interpret.motif.Motif`, trimmed), ``contrib`` (mean contribution, shape=
    (width, 4), trimmed), ``n_seqlets``, ``sign`` (+1 or -1)
    """
    modiscolite = extras.require('modiscolite', '--attribute')
    precompile = getattr(modiscolite, 'precompile', None)
    if precompile is not None and hasattr(precompile, 'start'):
        # compile the numba kernels in forked children, into numba's on-disk cache: later runs
        # load them instead of compiling for a minute (a no-op where forking is not safe)
        precompile.start()
    flank = window // 2 if flank is None else flank
    options.setdefault('trim_to_window_size', min(30, window + flank))
    options.setdefault('initial_flank_to_add', min(10, flank))
    X, hypothetical = np.asarray(X, np.float32), np.asarray(hypothetical, np.float32)
    if X.ndim != 3 or X.shape[1] != 4 or hypothetical.shape != X.shape:
        raise ValueError(f'X has shape {X.shape} and hypothetical {hypothetical.shape}; both '
                         f'must have shape (n, 4, L)')
    if X.shape[2] < window + 2 * flank:
        raise ValueError(f'TF-MoDISco: sequences of {X.shape[2]} letters are shorter than the '
                         f'window {window} plus 2 x flank {flank}')
    positive, negative = modiscolite.tfmodisco.TFMoDISco(
        one_hot=np.ascontiguousarray(X.transpose(0, 2, 1)),
        hypothetical_contribs=np.ascontiguousarray(hypothetical.transpose(0, 2, 1)),
        sliding_window_size=window, flank_size=flank, max_seqlets_per_metacluster=max_seqlets,
        n_leiden_runs=leiden_runs, **options)
    found = []
    for sign, patterns in ((1, positive or []), (-1, negative or [])):
        for pattern in patterns:
            contrib = np.asarray(pattern.contrib_scores)
            start, end = _trimmed(contrib, trim)
            name = f'{"pos" if sign > 0 else "neg"}_{len(found)}'
            counts = np.asarray(pattern.sequence)[start:end] * len(pattern.seqlets)
            found.append({'name': name, 'sign': sign, 'n_seqlets': len(pattern.seqlets),
                          'contrib': contrib[start:end],
                          'motif': Motif.from_counts(counts, alphabet, name=name,
                                                     n_sites=len(pattern.seqlets),
                                                     pseudocount=PSEUDOCOUNT)})
    return found


def read_meme_motifs(path):
    """``{name: pwm}`` of a MEME file, pwm shape=(4, width) in A, C, G, T order."""
    extras.require('memelite', '--motifs')
    from memelite.io import read_meme
    try:
        motifs = read_meme(path)
    except (OSError, ValueError, IndexError) as error:
        raise ValueError(f'--motifs {path}: cannot read it as a MEME motif file ({error})') \
            from None
    if not motifs:
        raise ValueError(f'--motifs {path}: no MOTIF in it')
    return {name: np.asarray(pwm, np.float64) for name, pwm in motifs.items()}


def match_motifs(motifs, database, top=3):
    """The ``top`` TOMTOM matches of each motif in a MEME database.

    Parameters
    ----------
    motifs: list of dict
        As :func:`find_motifs` returns them.
    database: str or dict
        A MEME file, or ``{name: pwm}`` with pwm shape=(4, width).

    Returns
    -------
    list of dict: ``query``, ``target``, ``p_value``, ``strand`` ('+' or '-'), ``offset``,
    ``overlap``, sorted by query then p-value
    """
    import warnings
    extras.require('memelite', '--motifs')
    from memelite import tomtom
    targets = read_meme_motifs(database) if isinstance(database, str) else database
    if not motifs:
        return []
    names = list(targets)
    queries = [np.ascontiguousarray(m['motif'].pwm.T) for m in motifs]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # few targets: memelite warns that p-values are rough
        p, _, offsets, overlaps, strands = tomtom(queries, [targets[n] for n in names],
                                                  n_jobs=1)[:5]
    rows = []
    for q, motif in enumerate(motifs):
        for t in np.argsort(p[q], kind='stable')[:top]:
            rows.append({'query': motif['name'], 'target': names[t], 'p_value': float(p[q, t]),
                         'strand': '-' if strands[q, t] else '+', 'offset': int(offsets[q, t]),
                         'overlap': int(overlaps[q, t])})
    return rows
