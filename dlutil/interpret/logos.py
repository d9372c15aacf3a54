"""Sequence logos: a motif's information content drawn as stacked letters (logomaker's glyphs
when it is installed), coloured as the classic logos colour nucleotides and by chemistry for
amino acids."""
import math

import numpy as np

# logo colours: nucleotides as in the classic logos, amino acids by chemistry
_NUCLEOTIDE_COLORS = {'A': '#109648', 'C': '#255C99', 'G': '#F7B32B', 'T': '#D62839',
                      'U': '#D62839'}
_PROTEIN_COLORS = dict(
    [(a, '#109648') for a in 'GSTYC'] + [(a, '#7B2D9B') for a in 'NQ']
    + [(a, '#255C99') for a in 'KRH'] + [(a, '#D62839') for a in 'DE']
    + [(a, '#222222') for a in 'AVLIPWFM'])
_OTHER_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                 '#7f7f7f', '#bcbd22', '#17becf']


def default_colors(symbols):
    """Logo colours: classic nucleotides, amino acids by chemistry, a palette otherwise."""
    if set(symbols) <= set(_NUCLEOTIDE_COLORS) | {'N'}:
        return {s: _NUCLEOTIDE_COLORS.get(s, '#888888') for s in symbols}
    if len(symbols) >= 15 and set(symbols) <= set(_PROTEIN_COLORS):
        return {s: _PROTEIN_COLORS[s] for s in symbols}
    return {s: _OTHER_COLORS[i % len(_OTHER_COLORS)] for i, s in enumerate(symbols)}


def draw_logo(ax, motif, colors=None, offset=0):
    """Draw ``motif``'s information-content logo on a matplotlib ``ax``.

    With logomaker installed (and one-letter symbols) it draws the glyphs; otherwise letters are
    stacked with matplotlib text paths, tallest on top.
    """
    info = motif.information()
    colors = {**default_colors(motif.alphabet), **(colors or {})}
    try:
        import logomaker
    except ImportError:
        logomaker = None
    if info.max() <= 0:  # a uniform motif: nothing to stack
        pass
    elif logomaker is not None and all(len(s) == 1 for s in motif.alphabet):
        import pandas
        frame = pandas.DataFrame(info, columns=list(motif.alphabet))
        logomaker.Logo(frame, ax=ax, color_scheme=colors, font_name='DejaVu Sans')
    else:
        _stack_letters(ax, info, motif.alphabet, colors)
    ax.set_xlim(-0.5, motif.length - 0.5)
    ax.set_ylim(0, math.log2(len(motif.alphabet)))
    ax.set_ylabel('bits')
    step = max(1, motif.length // 25)
    ax.set_xticks(range(0, motif.length, step),
                  [str(offset + i + 1) for i in range(0, motif.length, step)])
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)


def _stack_letters(ax, info, symbols, colors):
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D
    font = FontProperties(family='DejaVu Sans', weight='bold')
    for position, heights in enumerate(info):
        bottom = 0.0
        for j in np.argsort(heights, kind='stable'):
            height = heights[j]
            if height <= 1e-3:
                continue
            path = TextPath((0, 0), symbols[j], size=1, prop=font)
            box = path.get_extents()
            scale = Affine2D().translate(-box.x0, -box.y0).scale(
                0.9 / box.width, height / box.height).translate(position - 0.45, bottom)
            ax.add_patch(PathPatch(scale.transform_path(path), color=colors[symbols[j]], lw=0))
            bottom += height
