"""Attribution logos: letters as tall as their attribution (negative ones below the axis), drawn
with logomaker in the nucleotide colours of :mod:`dlutil.interpret.motif`.

    attribution_logo('seq0.png', {'DeepLIFT/SHAP': a, 'gradient x input': g}, span=100)
"""
import numpy as np

from dlutil.interpret.logos import default_colors
from dlutil.interpret.motif import save_figure

__all__ = ['attribution_logo', 'focus']


def focus(tracks, span):
    """[start, end) of ``span`` positions centred on the largest total |attribution|."""
    length = next(iter(tracks.values())).shape[-1]
    if span is None or span >= length:
        return 0, length
    weight = sum(np.abs(t).sum(0) for t in tracks.values())
    smooth = np.convolve(weight, np.ones(span), mode='valid')  # window sums, length - span + 1
    start = int(np.argmax(smooth))
    return start, start + span


def attribution_logo(path, tracks, title=None, span=None, alphabet='ACGT'):
    """Write one logo row per attribution track of one sequence as a PNG.

    Parameters
    ----------
    path: str
    tracks: dict of str to numpy.ndarray, shape=(4, L)
        Attributions per letter (zero for letters not in the sequence, unless hypothetical).
    title: str or None
    span: int or None
        Draw only the ``span`` positions around the most attributed stretch (all: None).
    alphabet: str
        The letters of the rows.

    Returns
    -------
    (start, end): the positions drawn, 0-based, end excluded
    """
    import logomaker
    import pandas
    from matplotlib.figure import Figure
    start, end = focus(tracks, span)
    width = min(30.0, max(6.0, 0.12 * (end - start) + 1.5))
    figure = Figure(figsize=(width, 1.8 * len(tracks) + 0.3), dpi=100, layout='constrained')
    colors = default_colors(tuple(alphabet))
    for i, (name, scores) in enumerate(tracks.items()):
        ax = figure.add_subplot(len(tracks), 1, i + 1)
        frame = pandas.DataFrame(np.asarray(scores, np.float64)[:, start:end].T,
                                 columns=list(alphabet), index=range(start, end))
        logomaker.Logo(frame, ax=ax, color_scheme=colors, font_name='DejaVu Sans')
        ax.axhline(0, color='#888', lw=0.5)
        ax.set_ylabel(name, fontsize=8)
        for side in ('top', 'right'):
            ax.spines[side].set_visible(False)
        if i == 0 and title:
            ax.set_title(title, fontsize=9)
    ax.set_xlabel('position (0-based)')
    save_figure(figure, path)
    return start, end
