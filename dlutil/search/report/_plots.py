"""The report's figures: validation reward by epoch, and best reward against each hyperparameter.

Each function takes what :func:`dlutil.search.report.read_search` returns and gives a
matplotlib ``Figure`` (no pyplot: no backend switch, nothing left open), or None when there is
nothing to plot yet.
"""
import math

import numpy as np

from dlutil.search.report._data import FAILED, as_number, as_text, constants


def _bracket_colors(trials):
    """Bracket s → colour, the largest s (most configurations) first; no bracket yet → grey."""
    from matplotlib import colormaps
    brackets = sorted({t['bracket'] for t in trials if t['bracket'] is not None}, reverse=True)
    palette = colormaps['tab10'].colors
    colors = {s: palette[i % len(palette)] for i, s in enumerate(brackets)}
    return {**colors, None: (0.6, 0.6, 0.6)}


def _bracket_legend(trials, colors):
    from matplotlib.lines import Line2D
    counts = {}
    for trial in trials:
        counts[trial['bracket']] = counts.get(trial['bracket'], 0) + 1
    return [Line2D([], [], color=color, marker='o', label=(f'bracket {s}' if s is not None
                                                          else 'no rung yet') + f' ({counts[s]})')
            for s, color in colors.items() if s in counts]


def _clip_low(ax, values):
    """Keep a few awful rewards (a first epoch, a blow-up) from squashing the rest of the axis."""
    values = np.asarray(values, dtype=float)
    low, high = np.percentile(values, [5, 100])
    if high > low and values.min() < low - (high - low):
        ax.set_ylim(low - 0.3 * (high - low), high + 0.05 * (high - low))
        ax.text(0.01, 0.01, f'rewards down to {values.min():.3g} below the axis', fontsize=8,
                color='0.4', transform=ax.transAxes)


def plot_rewards(search):
    """Validation reward against epoch, one line per trial, coloured by bracket; best in black."""
    trials = [t for t in search['trials'] if any(r is not None for r in t['rewards'])]
    if not trials:  # before importing matplotlib: the first page of a search is drawn at once
        return None
    from matplotlib.figure import (
        Figure,  # no pyplot: no backend switch, nothing left open
    )
    from matplotlib.ticker import MaxNLocator, NullLocator
    best = search['best']['trial'] if search['best'] else None
    colors = _bracket_colors(search['trials'])
    figure = Figure(figsize=(10, 5.5), dpi=100, layout='constrained')
    ax = figure.add_subplot()
    for bracket, color in colors.items():
        # one Line2D per bracket, trials split by NaN: 150 separate lines draw several times slower
        group = [t for t in trials if t['bracket'] == bracket and t['id'] != best]
        if group:
            ax.plot(*_joined(group), color=color, lw=1, alpha=0.6, marker='.', ms=4)
    for trial in trials:
        if trial['id'] == best:
            ax.plot(*_joined([trial]), color='black', lw=2.5, marker='o', ms=4, zorder=3,
                    label=f'best: {trial["id"]}')
    # the whole planned range, R epochs, so that the plot shows how far the search has come
    rungs = {r['epochs'] for r in search['rows'] if as_number(r.get('epochs'))}
    last = max([t['trained'] for t in trials] + list(rungs))
    planned = search['settings'].get('epoch')
    last = max(last, planned) if as_number(planned) else last
    if last > 10:  # rungs grow geometrically: give each room
        ax.set_xscale('log')
        ax.xaxis.set_minor_locator(NullLocator())
        ticks = sorted(rungs | {1, last})
        ax.set_xticks(ticks, [f'{e:g}' for e in ticks])
        ax.set_xlim(0.9, last * 1.1)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.7, last + 0.3)
    _clip_low(ax, [r for t in trials for r in t['rewards'] if r is not None])
    handles = _bracket_legend(search['trials'], colors) + ax.get_legend_handles_labels()[0]
    figure.legend(handles=handles, loc='outside right upper', fontsize='small')
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation reward (hyperband_reward)')
    ax.grid(alpha=0.3)
    return figure


def _joined(trials):
    """The epochs and rewards of ``trials`` end to end, a NaN between trials to break the line."""
    x, y = [], []
    for trial in trials:
        x += [np.nan if e is None else e for e in trial['epochs']] + [np.nan]
        y += [np.nan if r is None else r for r in trial['rewards']] + [np.nan]
    return x, y


def plot_hyperparameters(search):
    """Each trial's best reward against each hyperparameter, one small subplot each."""
    trials = [t for t in search['trials'] if t['best'] is not None]
    names = [name for name in search['hyperparameters'] if name not in constants(search)]
    if not trials or not names:
        return None
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    best = search['best']['trial'] if search['best'] else None
    colors = _bracket_colors(search['trials'])
    columns = min(len(names), 3)
    figure = Figure(figsize=(4.2 * columns, 0.6 + 3.4 * math.ceil(len(names) / columns)),
                    dpi=100, layout='constrained')
    figure.get_layout_engine().set(h_pad=0.15)  # room between a row's labels and the next row
    axes = figure.subplots(math.ceil(len(names) / columns), columns, squeeze=False, sharey=True)
    jitter = np.random.default_rng(0)  # strip-plot jitter, the same on every redraw
    for ax, name in zip(axes.flat, names):
        points = [t for t in trials if t['config'].get(name) is not None]
        y = [t['best'] for t in points]
        # the name under its own axis, in bold: as a title above the panel it read as the
        # x-axis label of the panel above
        ax.set_xlabel(name if len(name) <= 40 else name[:39] + '…', fontsize=10,
                      fontweight='bold')
        ax.grid(alpha=0.3)
        if not points:  # a key only in configs still training, or always None
            ax.text(0.5, 0.5, 'no values', ha='center', transform=ax.transAxes)
            ax.set_xticks([])
            continue
        if search['hyperparameters'][name] == 'numeric':
            x = [float(t['config'][name]) for t in points]
            if min(x) > 0 and max(x) / min(x) > 100:  # spans more than 2 orders of magnitude
                ax.set_xscale('log')
        else:
            labels = [as_text(t['config'][name]) for t in points]
            categories = sorted(set(labels))
            if search['hyperparameters'][name] == 'levels':
                categories = [as_text(v) for v in sorted({t['config'][name] for t in points})]
            x = [categories.index(label) + jitter.uniform(-0.15, 0.15) for label in labels]
            ax.set_xticks(range(len(categories)),
                          [c if len(c) <= 16 else c[:15] + '…' for c in categories],
                          rotation=30 if len(categories) > 3 else 0, fontsize=8)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        for marker, failed in (('o', False), ('x', True)):  # failed: best reward before that
            group = [i for i, t in enumerate(points) if (t['status'] in FAILED) == failed]
            ax.scatter([x[i] for i in group], [y[i] for i in group], s=18, alpha=0.7,
                       c=[colors[points[i]['bracket']] for i in group], marker=marker)
        for xi, yi, trial in zip(x, y, points):
            if trial['id'] == best:
                ax.scatter([xi], [yi], s=160, marker='*', color='black', zorder=3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel('best reward', fontsize=9)
    _clip_low(axes[0, 0], [t['best'] for t in trials])
    handles = _bracket_legend(search['trials'], colors)
    if any(t['status'] in FAILED for t in trials):
        handles.append(Line2D([], [], marker='x', ls='', color='0.3', label='failed'))
    figure.legend(handles=handles, loc='outside upper center', ncols=7, fontsize='small')
    return figure
