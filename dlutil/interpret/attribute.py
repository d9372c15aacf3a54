"""``--attribute``: attributions of the test set's top sequences, their logos, and the motifs
TF-MoDISco finds in them, in ``RESULT_DIR/interpret/``.

The target is ``--attribute-target``; by default class 1 (the positive class) of a two-class
classifier, output 0 of any other model. Outputs are named by def.py's ``CLASS_NAMES``, else the
model's ``task_names``. N and padding columns get no attribution (see
:mod:`dlutil.interpret.attributions`).

For the ``top`` test sequences with the highest output (logit) of the target, it computes
DeepLIFT/SHAP hypothetical contributions (20 dinucleotide shuffles per sequence) and reports their
convergence check (attributions sum to output minus mean reference output), draws logos of
DeepLIFT/SHAP, gradient × input and saturation mutagenesis for the first ``logos`` of them, runs
TF-MoDISco over all of them and, with ``motifs`` (a MEME file, e.g. JASPAR), matches each
pattern with TOMTOM. Files:

    attributions.html     the page: convergence, logos, motifs and their matches
    attributions.h5       index (row of the test set), x (n, 4, L), hypothetical, deeplift
                          (n, 4, L), output (n,), delta (n,): the convergence gap per sequence
    attribution_<k>.png   logos of the k-th top sequence
    modisco.meme, modisco_<name>.png, modisco_<name>_contrib.png, modisco_tomtom.tsv
"""
import html
import logging
import os

import numpy as np

from dlutil.interpret.attribution_logos import attribution_logo
from dlutil.interpret.attributions import as_sequences, convergence_cause, deep_lift_shap, \
    gradient_x_input, ism, ism_scores, split_bases
from dlutil.interpret.modisco import find_motifs, match_motifs
from dlutil.interpret.motif import write_meme
from dlutil.interpret.sequence_model import log_odds_kind
from dlutil import files, h5output
from dlutil.data.batches import iterate, split_batch, to_numpy
from dlutil.training.evaluation import main_output

log = logging.getLogger('dlutil')

__all__ = ['run', 'resolve_target', 'predicted_logits', 'top_sequences']


def resolve_target(target, names, n_outputs, binary=False):
    """The output index of ``--attribute-target``: an index, or a name of ``names``; by default
    1 (the positive class) for a two-class classifier (``binary``), else 0."""
    if target is None:
        return 1 if binary and n_outputs == 2 else 0
    if str(target).lstrip('-').isdigit():
        index = int(target)
        if not 0 <= index < n_outputs:
            raise ValueError(f'--attribute-target {target}: the model has {n_outputs} outputs '
                             f'(0 to {n_outputs - 1})')
        return index
    if names and target in names:
        return list(names).index(target)
    if not names:
        raise ValueError(f'--attribute-target {target!r}: not an output index (0 to '
                         f'{n_outputs - 1}), and the outputs have no names (CLASS_NAMES in '
                         f'def.py, or the model\'s task_names)')
    raise ValueError(f'--attribute-target {target!r}: not an output index nor one of the names '
                     f'{list(names)}')


def predicted_logits(model, generator, batch_size):
    """The model's logits on every row of ``generator``, float64, shape=(n, outputs)."""
    _, y_pred, _ = model.predict_batches(generator, batch_size, with_loss=False)
    logits = np.asarray(main_output(y_pred), np.float64)
    return logits.reshape(len(logits), -1)


def top_sequences(generator, batch_size, scores, top):
    """The ``top`` rows of ``generator`` with the largest ``scores``, largest first.

    Returns
    -------
    (rows, X): int64 (k,), float32 (k, 4, L)
    """
    rows = np.argsort(-np.asarray(scores), kind='stable')[:top]
    wanted, picked, seen = {int(r): k for k, r in enumerate(rows)}, [None] * len(rows), 0
    for batch in iterate(generator, batch_size):
        x = as_sequences(to_numpy(split_batch(batch)[0])).numpy()
        for i in np.flatnonzero([seen + i in wanted for i in range(len(x))]):
            picked[wanted[seen + i]] = x[i]
        seen += len(x)
    if seen != len(scores) or any(p is None for p in picked):
        raise ValueError(f'get_test_generator yielded {seen} rows on a second pass but '
                         f'{len(scores)} on the first; --attribute needs it to yield the same '
                         f'rows in the same order each time')
    return rows, np.stack(picked)


def run(definition, store, model, data_dir, batch_size, top=500, target=None, logos=5,
        motifs=None, window=21, seed=0):
    """``--attribute`` on the best trial (or ``--checkpoint``); see the module docstring."""
    folder = store.path('interpret')
    os.makedirs(folder, exist_ok=True)
    generator = definition.generator('get_test_generator', data_dir)
    names = definition.output_names(model)
    logits = predicted_logits(model, generator, batch_size)
    binary = log_odds_kind(model) == 'softmax' and logits.shape[1] == 2
    index = resolve_target(target, names, logits.shape[1], binary)
    label = names[index] if names and index < len(names) else (
        f'class {index}' if binary else f'output {index}')
    if target is None and binary:
        log.info(f'attribute: explaining {label}, the positive class of a two-class classifier '
                 f'(--attribute-target 0 explains the other)')
    rows, X = top_sequences(generator, batch_size, logits[:, index], top)
    output = logits[rows, index]
    log.info(f'attribute: DeepLIFT/SHAP of {label} on the {len(rows)} test sequences with the '
             f'highest {label} logit')
    result = deep_lift_shap(model, X, index, hypothetical=True, seed=seed,
                            batch_size=max(1, batch_size))
    converged = result.relative_delta <= 1e-3
    (log.info if converged else log.warning)(
        result.describe() + ('' if converged else f': above 1e-3, so do not trust these '
                             f'attributions; {convergence_cause(model)}'))
    observed = result.attributions * X
    _save(os.path.join(folder, 'attributions.h5'), rows, X, result, observed, output)
    sequences = _logos(model, X, observed, index, rows, logos, folder, batch_size)
    patterns, matches, note = [], [], ''
    try:
        patterns = find_motifs(split_bases(X)[0].numpy(), result.attributions, window=window)
    except (ValueError, IndexError) as error:  # too few seqlets to cluster, and the like
        note = f'TF-MoDISco found no patterns: {error}'
        log.warning(f'attribute: {note}')
    if patterns:
        write_meme([p['motif'] for p in patterns], os.path.join(folder, 'modisco.meme'))
        for p in patterns:
            p['motif'].logo(os.path.join(folder, f'modisco_{p["name"]}.png'),
                            title=f'{p["name"]}: {p["n_seqlets"]} seqlets')
            attribution_logo(os.path.join(folder, f'modisco_{p["name"]}_contrib.png'),
                             {'contribution': p['contrib'].T})
        if motifs:
            matches = match_motifs(patterns, motifs)
            _write_matches(os.path.join(folder, 'modisco_tomtom.tsv'), matches)
        log.info('attribute: TF-MoDISco: ' + ', '.join(
            f'{p["name"]} {p["motif"].consensus} ({p["n_seqlets"]} seqlets)' for p in patterns))
    elif not note:
        note = 'TF-MoDISco found no patterns'
    page = _page(label, result, sequences, patterns, matches, note, motifs,
                 None if converged else convergence_cause(model))
    path = os.path.join(folder, 'attributions.html')
    files.atomic_write(path, lambda f: f.write(page))
    log.info(f'attribute: {path}')
    return {'result': result, 'patterns': patterns, 'matches': matches, 'rows': rows}


def _save(path, rows, X, result, observed, output):
    with h5output.create(path) as f:
        f['index'], f['x'], f['output'] = rows, X, output
        f['hypothetical'], f['deeplift'] = result.attributions, observed
        f['delta'], f['output_difference'] = result.delta, result.output_difference


def _logos(model, X, observed, index, rows, count, folder, batch_size):
    count = min(count, len(X))
    if not count:
        return []
    grads = gradient_x_input(model, X[:count], target=index, batch_size=batch_size)
    effects = ism(model, X[:count], batch_size=batch_size)[..., index]
    ism_attr = ism_scores(effects, X[:count])
    drawn = []
    for k in range(count):
        name = f'attribution_{k}.png'
        span = attribution_logo(os.path.join(folder, name),
                                {'DeepLIFT/SHAP': observed[k], 'gradient × input': grads[k],
                                 'ISM': ism_attr[k]},
                                title=f'test sequence {rows[k]}', span=100)
        drawn.append((rows[k], name, span))
    return drawn


def _write_matches(path, matches):
    columns = ['query', 'target', 'p_value', 'strand', 'offset', 'overlap']
    text = '\t'.join(columns) + '\n' + ''.join(
        '\t'.join(f'{m[c]:.3g}' if c == 'p_value' else str(m[c]) for c in columns) + '\n'
        for m in matches)
    files.atomic_write(path, lambda f: f.write(text))


def _page(label, result, sequences, patterns, matches, note, motifs, cause=None):
    e = html.escape
    ok = result.relative_delta <= 1e-3
    parts = [f'<h1>Attributions of {e(label)}</h1>',
             f'<p class="{"ok" if ok else "bad"}">{e(result.describe())}'
             f'{"" if ok else " — above 1e-3: not trustworthy; " + e(cause or "")}.</p>',
             '<h2>Top sequences</h2>']
    for row, name, (start, end) in sequences:
        parts.append(f'<p>test sequence {row}, positions {start}–{end - 1}</p>'
                     f'<img src="{name}">')
    parts.append('<h2>TF-MoDISco motifs</h2>')
    if note:
        parts.append(f'<p>{e(note)}</p>')
    by_query = {}
    for m in matches:
        by_query.setdefault(m['query'], []).append(m)
    for p in patterns:
        hits = ', '.join(f'{e(m["target"])} (p = {m["p_value"]:.2g}, {m["strand"]})'
                         for m in by_query.get(p['name'], []))
        parts.append(f'<section><h3>{e(p["name"])} {e(p["motif"].consensus)}: '
                     f'{p["n_seqlets"]} seqlets</h3>'
                     + (f'<p>TOMTOM against {e(os.path.basename(motifs))}: {hits}</p>'
                        if motifs else '')
                     + f'<img src="modisco_{p["name"]}.png"> '
                       f'<img src="modisco_{p["name"]}_contrib.png"></section>')
    style = ('body{font-family:sans-serif;margin:2em;max-width:1400px} img{max-width:100%} '
             '.ok{color:#1a7f37} .bad{color:#b00020;font-weight:bold}')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Attributions</title>'
            f'<style>{style}</style></head><body>' + '\n'.join(parts) + '</body></html>\n')
