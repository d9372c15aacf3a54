"""The plots of :mod:`interpret`: kernel positions, per-class activation violins, clustering.

Every plot is a matplotlib ``Figure`` (no pyplot state) written atomically as a PNG.
"""
import math

import numpy as np

from dlutil.interpret.motif import save_figure

_CLASS_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                 '#7f7f7f', '#bcbd22', '#17becf']


def _class_color(c):
    return _CLASS_COLORS[c % len(_CLASS_COLORS)]


def plot_positions(path, kernel, classes, x):
    """Where kernel ``kernel`` fires, one row per class: a histogram of the window starts of its
    maximum activations, and its mean ± sd activation along the sequence.

    ``classes``: ``[(name, starts, maps)]``, the sequences of each class that reach the
    threshold: ``starts`` shape=(m,), ``maps`` shape=(m, positions); ``x``: the window start of
    each output position.
    """
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7, 0.9 + 1.4 * len(classes)), dpi=100, layout='constrained')
    axes = figure.subplots(len(classes), 2, squeeze=False, sharex=True)
    span = (x[0] - 0.5, x[-1] + 0.5)
    bins = np.arange(x[0], x[-1] + 2) - 0.5 if x[-1] - x[0] < 200 else 100
    for c, ((name, starts, maps), (left, right)) in enumerate(zip(classes, axes)):
        if len(starts):
            counts, edges = np.histogram(starts, bins=bins, range=span)
            left.stairs(counts, edges, fill=True, color=_class_color(c))  # one artist, not bars
            mean, sd = maps.mean(axis=0), maps.std(axis=0)
            right.plot(x, mean, color=_class_color(c), lw=1.2)
            right.fill_between(x, mean - sd, mean + sd, color=_class_color(c), alpha=0.25, lw=0)
        else:
            for ax in (left, right):
                ax.text(0.5, 0.5, 'no sequence reaches the threshold', ha='center',
                        va='center', color='0.4', transform=ax.transAxes)
        left.set_ylabel(f'{name}\n(n = {len(starts)})')
        for ax in (left, right):
            ax.set_xlim(*span)
            ax.grid(alpha=0.3)
    axes[0, 0].set_title(f'kernel {kernel}: where the maximum is', fontsize=10)
    axes[0, 1].set_title('activation along the sequence, mean ± sd', fontsize=9)
    axes[-1, 0].set_xlabel('window start')
    axes[-1, 1].set_xlabel('window start')
    return save_figure(figure, path)


def plot_violins(path, kernel, classes, threshold, score):
    """The distribution of kernel ``kernel``'s maximum activation in each class.

    ``classes``: ``[(name, values)]``; a class whose values are all equal is drawn as a line.
    """
    from matplotlib.figure import Figure
    names = [name for name, _ in classes]
    # a class name wider than its slot (about 9 characters at this size) would run into its
    # neighbour's: long names are set at an angle, right-aligned under their violin
    slanted = len(classes) > 4 or max((len(str(n)) for n in names), default=0) > 9
    figure = Figure(figsize=(max(3.2, 1.2 + 0.9 * len(classes)), 3.6 + 0.8 * slanted), dpi=100,
                    layout='constrained')
    ax = figure.add_subplot()
    spread = [i for i, (_, values) in enumerate(classes) if len(values) and np.ptp(values) > 0]
    if spread:
        parts = ax.violinplot([classes[i][1] for i in spread], positions=spread, widths=0.8,
                              showmedians=True)
        for i, body in zip(spread, parts['bodies']):
            body.set_facecolor(_class_color(i))
            body.set_alpha(0.6)
    for i, (_, values) in enumerate(classes):
        if len(values) and i not in spread:
            ax.plot([i - 0.3, i + 0.3], [values[0]] * 2, color=_class_color(i), lw=2)
    ax.axhline(threshold, color='0.4', ls='--', lw=1)
    ax.annotate(f'threshold {threshold:.3g}', (0, threshold), xycoords=('axes fraction', 'data'),
                xytext=(2, 2), textcoords='offset points', fontsize=7, color='0.3')
    ax.set_xticks(range(len(classes)), names, rotation=30 if slanted else 0,
                  ha='right' if slanted else 'center', rotation_mode='anchor')
    ax.set_xlim(-0.6, len(classes) - 0.4)
    ax.set_ylabel('maximum activation')
    ax.set_title(f'kernel {kernel}: importance {score:.3g}', fontsize=9)
    ax.grid(alpha=0.3, axis='y')
    return save_figure(figure, path)


def plot_clustering(activations, output_file, classes=None, max_sequences=5000, seed=0):
    """Ward clustering of sequences and kernels on standardised max activations, as a heatmap.

    Each kernel's max activations are standardised (mean 0, sd 1) over the sequences; sequences
    and kernels are clustered hierarchically (Ward's method, Euclidean distance). Only for
    single-label data.

    Parameters
    ----------
    activations: dict
        From :func:`interpret.get_max_activations` ('activations', 'labels', 'class_names').
    output_file: str
        The PNG to write.
    classes: list of int, optional
        Cluster the sequences of these classes only (default: all).
    max_sequences: int
        Ward's method needs memory quadratic in the sequences: above this many, a random
        (seeded) subset is clustered, as the title says.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    labels = np.asarray(activations['labels'])
    if np.any(labels.sum(axis=1) != 1):
        raise ValueError('plot_clustering needs single-label data: some sequences have '
                         f'{int(labels.sum(axis=1).max())} or {int(labels.sum(axis=1).min())} '
                         'classes')
    y = labels.argmax(axis=1)
    names = activations['class_names']
    chosen = list(range(len(names))) if classes is None else [int(c) for c in classes]
    if any(not 0 <= c < len(names) for c in chosen):
        raise ValueError(f'classes {classes}: the classes are 0 to {len(names) - 1}')
    rows = np.flatnonzero(np.isin(y, chosen))
    total = len(rows)
    if total < 2:
        raise ValueError(f'plot_clustering needs at least 2 sequences, classes {chosen} have '
                         f'{total}')
    if total > max_sequences:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, max_sequences, replace=False))
    values = np.asarray(activations['activations'], dtype=np.float64)[rows]
    sd = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1)
    row_link = linkage(z, 'ward')
    col_link = linkage(z.T, 'ward') if z.shape[1] > 1 else None
    row_order = leaves_list(row_link)
    col_order = leaves_list(col_link) if col_link is not None else np.arange(z.shape[1])
    figure = _heatmap(z[row_order][:, col_order], y[rows][row_order], names, row_link,
                      row_order, col_link, col_order)
    shown = f'{len(rows)} sequences' + (f' (a random subset of {total})' if total > len(rows)
                                        else '')
    figure.suptitle(f'Ward clustering of {shown} × {z.shape[1]} kernels, standardised max '
                    'activations', fontsize=11)
    return save_figure(figure, output_file)


def _heatmap(z, y, names, row_link, row_order, col_link, col_order):
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    n, k = z.shape
    width = min(24.0, 5 + 0.18 * k)
    figure = Figure(figsize=(width, 9), dpi=100)
    grid = figure.add_gridspec(2, 4, width_ratios=[2, 0.35, 10, 0.3], height_ratios=[1.8, 10],
                               wspace=0.03, hspace=0.03, left=0.03, right=0.92, top=0.91,
                               bottom=0.08)
    heat = figure.add_subplot(grid[1, 2])
    image = heat.imshow(z, aspect='auto', origin='lower', cmap='RdBu_r', vmin=-3, vmax=3,
                        interpolation='nearest', extent=(-0.5, k - 0.5, -0.5, n - 0.5))
    heat.set_yticks([])
    step, fontsize = kernel_ticks(k, width * 0.62 * 72)  # the heatmap: 62 % of the width
    heat.set_xticks(range(0, k, step), [str(c) for c in col_order[::step]], fontsize=fontsize,
                    rotation=90)
    heat.set_xlabel('kernel' if step == 1 else
                    f'kernel (every {step}th column labelled, in the clustering\'s order)')
    _dendrogram(figure.add_subplot(grid[1, 0]), row_link, row_order, 'left')
    if col_link is not None:
        _dendrogram(figure.add_subplot(grid[0, 2]), col_link, col_order, 'top')
    bar = figure.add_subplot(grid[1, 1])
    colors = [_CLASS_COLORS[c % len(_CLASS_COLORS)] for c in range(len(names))]
    bar.imshow(y[:, None], aspect='auto', origin='lower', cmap=ListedColormap(colors),
               vmin=-0.5, vmax=len(names) - 0.5, interpolation='nearest')
    bar.set_axis_off()
    figure.colorbar(image, cax=figure.add_subplot(grid[1, 3]),
                    label='standardised max activation')
    present = sorted(set(y.tolist()))
    figure.legend(handles=[Patch(color=colors[c], label=names[c]) for c in present],
                  loc='upper left', bbox_to_anchor=(0.01, 0.91), fontsize='small',
                  title='class', frameon=False)
    return figure


def kernel_ticks(columns, points):
    """Label every ``step``-th of ``columns`` heatmap columns ``points`` wide, at ``fontsize``.

    Every column is labelled while a label gets at least 4.5 points (a 5-point digit, rotated);
    beyond that every ``step``-th, so a label always names the kernel of its own column.
    """
    per_column = points / max(columns, 1)
    fontsize = min(7.0, max(4.5, per_column * 0.9))
    step = max(1, math.ceil(fontsize / per_column))
    return step, fontsize


def _dendrogram(ax, link, order, side):
    """Draw a scipy linkage as a dendrogram whose leaves sit at 0 … n−1 in ``order``."""
    from matplotlib.collections import LineCollection
    n = len(order)
    where = np.zeros(2 * n - 1)
    where[order] = np.arange(n)
    height = np.zeros(2 * n - 1)
    segments = []
    for j, (a, b, distance, _) in enumerate(link):  # iterative: deep trees need no recursion
        a, b = int(a), int(b)
        where[n + j], height[n + j] = (where[a] + where[b]) / 2, distance
        segments.append([(where[a], height[a]), (where[a], distance), (where[b], distance),
                         (where[b], height[b])])
    segments = np.array(segments).reshape(-1, 4, 2)
    if side == 'left':  # leaves along y, the root at the left
        segments = segments[:, :, ::-1]
        ax.set_xlim(height.max() * 1.02 or 1, 0)
        ax.set_ylim(-0.5, n - 0.5)
    else:
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(0, height.max() * 1.02 or 1)
    ax.add_collection(LineCollection(segments, colors='0.2', linewidths=0.6))
    ax.set_axis_off()
