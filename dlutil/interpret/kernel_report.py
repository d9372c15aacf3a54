"""What a trained sequence CNN has learned: its first-layer kernels as motifs, as in pysster.

For a network whose first layer is a convolution over one-hot sequences (``nn.Conv1d`` on
(n, alphabet, length), or ``nn.Conv2d`` on (n, alphabet, 1, length) or (n, 1, alphabet, length)),
after Budach & Marsico, Bioinformatics 2018::

    acts = get_max_activations(model, get_test_generator(data_dir))
    motifs = visualize_all_kernels(acts, 'ACGT', 'interpret/')  # PNGs, summary.html, motifs.meme
    plot_clustering(acts, 'interpret/clustering.png')
    visualize_optimized_inputs(model, 'output', 'interpret/', acts['input_shape'], 'ACGT')

A kernel's *maximum activation* on a sequence is the largest value of its output (after the
activation module applied right after the convolution, e.g. ``nn.ReLU``) over all positions; the
window at that position is where the kernel fires. Per kernel, with classes c:

- threshold = max_c mean(max activation of class c's sequences);
- motif = letter counts of the windows of the top class's sequences whose max activation reaches
  the threshold (the 500 highest), PWM = 0.999·freq + 0.001/|alphabet| (:mod:`motif`);
- importance = max_c − min_c of the class means (a kernel enriched in some classes and not in
  others matters most for the prediction).

Files (``visualize_kernel``): ``motif_kernel_<k>.png``, ``position_kernel_<k>.png``,
``activations_kernel_<k>.png``; ``visualize_all_kernels`` adds ``summary.html`` and
``motifs.meme``, kernels sorted by importance. :func:`run` is ``--interpret``: all of it on the
test set of the best trial, with :func:`performance.performance_report`, in
``RESULT_DIR/interpret/``.

The pieces live in :mod:`activations` (hooks, max activations, importance), :mod:`motif` (PWMs,
logos, MEME), :mod:`interpret_plots`, :mod:`optimized_inputs` and :mod:`performance`; this
module re-exports their public functions.
"""
import html
import logging
import os

import numpy as np
from tqdm.auto import tqdm

from dlutil import files
from dlutil.interpret.first_layer import first_convolution
from dlutil.interpret.kernel_activations import (activation_maps, class_means, get_max_activations,
                                                 importance_scores, window_starts)
from dlutil.interpret.plots import plot_clustering, plot_positions, plot_violins
from dlutil.interpret.motif import Motif, alphabet_symbols, write_meme
from dlutil.interpret.optimized_inputs import visualize_optimized_inputs
from dlutil.sequences.alphabets import DNA
from dlutil.interpret.classification_report import performance_report

log = logging.getLogger('dlutil')

MAX_SITES = 500

__all__ = ['get_max_activations', 'class_means', 'importance_scores', 'activation_maps',
           'first_convolution', 'kernel_sites', 'visualize_kernel', 'visualize_all_kernels',
           'plot_clustering', 'visualize_optimized_inputs', 'performance_report',
           'definition_alphabet', 'run']


def _windows(activations, kernel, rows):
    """One-hot windows where kernel ``kernel`` fires on ``rows``, shape=(len(rows), A, span)."""
    span, (left, right) = activations['kernel_length'], activations['pad']
    padded = np.pad(activations['sequences'][rows], ((0, 0), (0, 0), (left, right)))
    starts = activations['starts'][rows, kernel] + left
    index = starts[:, None] + np.arange(span)
    return padded[np.arange(len(rows))[:, None], :, index].transpose(0, 2, 1)


def kernel_sites(activations, kernel, max_sites=MAX_SITES):
    """The sequences kernel ``kernel``'s motif is built from, its top class and threshold.

    The top class's sequences whose max activation reaches the threshold (the largest class
    mean), the ``max_sites`` highest first; none for a kernel whose max activation never varies.
    """
    means = class_means(activations)[:, kernel]
    top = int(np.nanargmax(means))
    threshold = float(means[top])
    values = activations['activations'][:, kernel]
    rows = np.flatnonzero((activations['labels'][:, top] > 0) & (values >= threshold))
    if values.max() == values.min():
        rows = rows[:0]
    rows = rows[np.argsort(-values[rows], kind='stable')][:max_sites]
    return rows, top, threshold


def visualize_kernel(activations, data, kernel, folder, colors=None, max_sites=MAX_SITES):
    """The motif, positions and class enrichment of one first-layer kernel, as three PNGs.

    Writes ``motif_kernel_<k>.png`` (logo), ``position_kernel_<k>.png`` (per class: histogram of
    window starts and mean ± sd activation along the sequence, of the sequences that reach the
    threshold) and ``activations_kernel_<k>.png`` (per-class violins of max activations).

    Parameters
    ----------
    activations: dict
        From :func:`get_max_activations`.
    data: str, sequence of symbols, or an object with ``alphabet``
        The letters of the one-hot channels, e.g. ``'ACGT'``.
    kernel: int
    folder: str
    colors: dict of symbol -> colour, optional

    Returns
    -------
    (Motif or tuple of Motif, float)
        The motif (for a sequence/structure product alphabet, its marginal motifs) and the
        kernel's importance score.
    """
    motif, rows, top, threshold = _kernel_motif(activations, data, kernel, max_sites)
    name = activations['class_names'][top]
    score = float(importance_scores(activations)[kernel])
    motif.logo(os.path.join(folder, f'motif_kernel_{kernel}.png'), colors,
               title=f'kernel {kernel}: {len(rows)} sequences of {name}')
    values = activations['activations'][:, kernel]
    members = [np.flatnonzero(activations['labels'][:, c] > 0)
               for c in range(len(activations['class_names']))]
    above = [m[values[m] >= threshold] for m in members]
    plot_positions(os.path.join(folder, f'position_kernel_{kernel}.png'), kernel,
                   [(c, activations['starts'][m, kernel], activation_maps(activations, kernel, m))
                    for c, m in zip(activations['class_names'], above)],
                   window_starts(activations))
    plot_violins(os.path.join(folder, f'activations_kernel_{kernel}.png'), kernel,
                 [(c, values[m]) for c, m in zip(activations['class_names'], members)],
                 threshold, score)
    return motif.marginals() or motif, score


def _kernel_motif(activations, data, kernel, max_sites=MAX_SITES):
    """Kernel ``kernel``'s motif (no plots), its sites, top class and threshold."""
    n_kernels = activations['activations'].shape[1]
    if not 0 <= kernel < n_kernels:
        raise ValueError(f'kernel {kernel}: the first layer has kernels 0 to {n_kernels - 1}')
    symbols = alphabet_symbols(data, activations['sequences'].shape[1])
    rows, top, threshold = kernel_sites(activations, kernel, max_sites)
    counts = _windows(activations, kernel, rows).sum(axis=0).T
    motif = Motif.from_counts(counts, symbols, name=f'kernel_{kernel}', n_sites=len(rows))
    return motif, rows, top, threshold


def visualize_all_kernels(activations, data, folder, colors=None, links=(), top=None):
    """:func:`visualize_kernel` for every kernel (or the ``top`` most important), ``summary.html``
    and ``motifs.meme``.

    Both list the kernels by importance, most important first; the page opens with an index
    of all kernels (rank, importance, consensus, sites) linking to their sections. ``motifs.meme``
    (MEME version 4) holds the sequence motifs of all kernels (the sequence marginal for product
    alphabets) with the data's letter frequencies as background. ``links``: ``(title, relative
    path)`` pairs that the page links to (other files of the folder). ``top``: draw the plots of
    this many kernels only, the most important (``--interpret-top``); default all.

    Returns
    -------
    list of Motif (or of tuples of Motif), in kernel order
    """
    symbols = alphabet_symbols(data, activations['sequences'].shape[1])
    n_kernels = activations['activations'].shape[1]
    if top is not None and top < 1:
        raise ValueError(f'--interpret-top must be at least 1, got {top}')
    scores = np.asarray(importance_scores(activations), dtype=np.float64)
    order = sorted(range(n_kernels), key=lambda k: (-scores[k], k))
    drawn = set(order if top is None else order[:top])
    motifs = []
    for k in tqdm(range(n_kernels), desc='interpret: kernels', unit='kernel', disable=None):
        if k in drawn:
            motifs.append(visualize_kernel(activations, symbols, k, folder, colors)[0])
        else:
            motif = _kernel_motif(activations, symbols, k)[0]
            motifs.append(motif.marginals() or motif)
    sequence_motifs = [m[0] if isinstance(m, tuple) else m for m in motifs]
    frequencies = activations['sequences'].sum(axis=(0, 2)).astype(np.float64)
    frequencies = frequencies / frequencies.sum() if frequencies.sum() > 0 else \
        np.full(len(symbols), 1 / len(symbols))
    background = Motif(symbols, frequencies[None])
    background = (background.marginals() or (background,))[0].pwm[0]
    write_meme([sequence_motifs[k] for k in order], os.path.join(folder, 'motifs.meme'),
               background)
    page = _summary_page(activations, motifs, scores, order, links, drawn)
    files.atomic_write(os.path.join(folder, 'summary.html'), lambda f: f.write(page))
    return motifs


def _summary_page(activations, motifs, scores, order, links, drawn=None):
    e = html.escape
    drawn = set(order) if drawn is None else drawn
    sites = {k: (m[0] if isinstance(m, tuple) else m).n_sites for k, m in enumerate(motifs)}
    consensus = {k: ' / '.join(p.consensus for p in (m if isinstance(m, tuple) else (m,)))
                 for k, m in enumerate(motifs)}
    items = [f'<a href="{e(path)}">{e(title)}</a>' for title, path in
             (('motifs.meme (MEME version 4)', 'motifs.meme'),) + tuple(links)]
    rows = []
    for rank, k in enumerate(order, 1):
        if k not in drawn:
            continue
        images = ''.join(f'<img src="{e(f"{kind}_kernel_{k}.png")}" alt="{e(kind)} of kernel '
                         f'{k}" class="{kind}">' for kind in ('motif', 'position', 'activations'))
        rows.append(f'<section id="kernel-{k}"><h2>#{rank}: kernel {k}</h2><p class="meta">'
                    f'importance {scores[k]:.4g} · consensus <code>{e(consensus[k])}</code> · '
                    f'{sites[k]} sequences</p><div class="row">{images}</div></section>')
    n, width = activations['activations'].shape
    index = _kernel_index(order, scores, consensus, sites, drawn)
    layer = activations['layer'] or 'the network'
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>Kernels of {e(layer)}</title><style>{STYLE}</style>'
            f'</head>\n<body>\n<h1>First-layer kernels of {e(layer)}</h1>'
            f'<p class="meta">{width} kernels on {n} sequences of '
            f'{e(", ".join(activations["class_names"]))}, sorted by importance: max − min over '
            f'classes of the mean maximum activation. Motifs: the windows of the top class\'s '
            f'sequences whose maximum activation reaches the largest class mean.</p>'
            f'<p>{" · ".join(items)}</p>\n{index}\n' + '\n'.join(rows) +
            '\n</body></html>\n')


def _kernel_index(order, scores, consensus, sites, drawn):
    """The table of all kernels by importance that opens ``summary.html``."""
    e = html.escape
    high = max((scores[k] for k in order if np.isfinite(scores[k])), default=0) or 1
    rows = []
    for rank, k in enumerate(order, 1):
        name = f'<a href="#kernel-{k}">kernel {k}</a>' if k in drawn else f'kernel {k}'
        share = max(0.0, float(scores[k]) / high) if np.isfinite(scores[k]) else 0.0
        rows.append(f'<tr><td>{rank}</td><td>{name}</td><td class="num">{scores[k]:.4g}</td>'
                    f'<td><span class="bar" style="width:{100 * share:.0f}px"></span></td>'
                    f'<td><code>{e(consensus[k])}</code></td><td class="num">{sites[k]}</td>'
                    f'</tr>')
    shown = (f'Plots below for all {len(order)} kernels.' if len(drawn) == len(order) else
             f'Plots below for the {len(drawn)} most important of {len(order)} kernels '
             f'(--interpret-top); motifs.meme has all of them.')
    return (f'<h2 id="index">Kernels by importance</h2><p class="meta">{shown}</p>'
            f'<div class="index"><table><thead><tr><th>#</th><th>kernel</th><th>importance'
            f'</th><th></th><th>consensus</th><th>sequences</th></tr></thead><tbody>'
            + ''.join(rows) + '</tbody></table></div>')


STYLE = '''
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin: 1.2em 0 0.1em; font-size: 1.15em; }
section { border-top: 1px solid #ddd; } .meta { color: #555; margin: 0.2em 0 0.5em; }
.row { display: flex; gap: 1em; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; } img.position { width: 560px; }
.index { max-height: 24em; overflow-y: auto; display: inline-block; border: 1px solid #ddd; }
.index table { border-collapse: collapse; } .index td, .index th { padding: 1px 10px; }
.index th { position: sticky; top: 0; background: #f3f3f3; text-align: left; }
.index tr:nth-child(even) td { background: #fafafa; } td.num { text-align: right; }
.bar { display: inline-block; height: 0.8em; background: #4a7fb5; }
'''


def definition_alphabet(module, n_channels):
    """The alphabet of a def.py: its ``ALPHABET``, else ``'ACGT'`` for 4 one-hot channels."""
    alphabet = getattr(module, 'ALPHABET', None)
    if alphabet is None:
        if n_channels != 4:
            raise ValueError(f'--interpret: the input has {n_channels} one-hot channels, so the '
                             f'letters cannot be guessed; define ALPHABET in def.py, e.g. '
                             f"ALPHABET = 'ACDEFGHIKLMNPQRSTVWY' (one symbol per channel)")
        alphabet = DNA
    try:
        return alphabet_symbols(alphabet, n_channels)
    except ValueError as error:
        raise ValueError(f'--interpret: ALPHABET of def.py: {error}') from None


def run(definition, store, model, data_dir, batch_size, top=None):
    """``--interpret``: everything above on the test set, under ``RESULT_DIR/interpret/``.

    ``top``: plots for the ``top`` most important kernels only (``--interpret-top``).
    """
    folder = store.path('interpret')
    generator = definition.generator('get_test_generator', data_dir)
    names = getattr(definition.module, 'CLASS_NAMES', None)  # a loader may have set it
    log.info('interpret: maximum activations of the first-layer kernels on the test set')
    activations = get_max_activations(model, generator, batch_size, class_names=names)
    symbols = definition_alphabet(definition.module, activations['sequences'].shape[1])
    names = activations['class_names']
    log.info(f'interpret: {activations["activations"].shape[1]} kernels of '
             f'{activations["layer"]!r} on {len(activations["labels"])} test sequences')
    y_true, y_pred, _ = model.predict_batches(generator, batch_size, with_loss=False)
    performance_report(y_true, model.prediction_output(y_pred), names, folder)
    links = [('performance (precision, recall, F1, ROC-AUC, PR-AUC)', 'performance.html')]
    if os.path.exists(os.path.join(folder, 'attributions.html')):  # --attribute ran first
        links.append(('attributions and TF-MoDISco motifs', 'attributions.html'))
    if activations['multilabel']:
        log.info('interpret: no clustering plot: clustering needs single-label classes')
    else:
        log.info('interpret: clustering')
        plot_clustering(activations, os.path.join(folder, 'clustering.png'))
        links.append(('clustering of max activations', 'clustering.png'))
    shape = activations['input_shape']
    if shape is None or len(symbols) not in shape:
        log.info(f'interpret: no optimized inputs: the network\'s input (shape {shape}) has no '
                 f'axis of the {len(symbols)} letters to optimise')
    else:
        log.info('interpret: optimized inputs of the output classes')
        optimized = visualize_optimized_inputs(model, 'output', folder, shape, symbols,
                                               node_names=names)
        links += [(f'optimized input for {names[c]}', f'optimized_output_{c}.png')
                  for c in range(len(optimized))]
    visualize_all_kernels(activations, symbols, folder, links=links, top=top)
    log.info(f'interpret: {os.path.join(folder, "summary.html")}')
    return folder
