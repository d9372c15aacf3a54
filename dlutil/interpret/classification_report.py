"""A classifier's performance per class: precision, recall, F1, ROC-AUC, PR-AUC and support.

    performance_report(y_true, y_pred, ['bound', 'unbound'], 'interpret/')

writes ``performance.csv`` and ``performance.html`` (one row per class and their macro average)
and ``roc.png`` / ``precision_recall.png`` (one curve per class). Single-label predictions are the
arg-max class; multi-label ones are the classes with probability ≥ 0.5. ROC-AUC and PR-AUC
(average precision, sklearn's ``average_precision_score``) rank each class one-vs-rest by its
probability; they are NaN where a class is absent (or, for ROC-AUC, present in every row).
"""
import html
import os

import numpy as np
from sklearn.metrics import (average_precision_score, f1_score, precision_recall_curve,
                             precision_score, recall_score, roc_auc_score, roc_curve)

from dlutil import files
from dlutil.interpret.motif import save_figure
from dlutil.training.labels import label_matrix

COLUMNS = ['class', 'precision', 'recall', 'f1', 'roc_auc', 'pr_auc', 'support']


def class_scores(y_true, y_pred):
    """0/1 labels and class probabilities, both shape=(n, C), and whether it is multi-label."""
    probs = np.asarray(y_pred, dtype=np.float64)
    if probs.ndim == 1 or (probs.ndim == 2 and probs.shape[1] == 1):
        probs = probs.reshape(len(probs))
        probs = np.stack([1 - probs, probs], axis=1)  # one output: the probability of class 1
    if probs.ndim != 2:
        raise ValueError(f'y_pred has shape {probs.shape}; expected probabilities, shape '
                         f'(n, classes)')
    labels = label_matrix(y_true, probs.shape[1])
    if labels.shape != probs.shape:
        raise ValueError(f'y_true gives labels of shape {labels.shape} but y_pred has shape '
                         f'{probs.shape}')
    return labels, probs, bool(np.any(labels.sum(axis=1) != 1))


def performance_report(y_true, y_pred, class_names, folder):
    """Per-class precision, recall, F1, ROC-AUC, PR-AUC and support, as files in ``folder``.

    Parameters
    ----------
    y_true: array, shape=(n,) class indices, or (n, C) 0/1 rows
    y_pred: array, shape=(n, C) class probabilities (or (n,) the probability of class 1)
    class_names: list of str, or None for 'class 0', 'class 1', …
    folder: str

    Returns
    -------
    list of dict
        One row per class, then ``'macro average'`` (the mean over classes, NaN ignored), with
        the keys of :data:`COLUMNS`.
    """
    labels, probs, multilabel = class_scores(y_true, y_pred)
    n_classes = labels.shape[1]
    names = [f'class {c}' for c in range(n_classes)] if class_names is None else \
        [str(c) for c in class_names]
    if len(names) != n_classes:
        raise ValueError(f'class_names has {len(names)} names for {n_classes} classes')
    predicted = probs >= 0.5 if multilabel else np.eye(n_classes)[probs.argmax(axis=1)]
    rows = []
    for c, name in enumerate(names):
        truth, guess, score = labels[:, c] > 0, predicted[:, c] > 0, probs[:, c]
        both = 0 < truth.sum() < len(truth)
        rows.append({
            'class': name,
            'precision': float(precision_score(truth, guess, zero_division=0)),
            'recall': float(recall_score(truth, guess, zero_division=0)),
            'f1': float(f1_score(truth, guess, zero_division=0)),
            'roc_auc': float(roc_auc_score(truth, score)) if both else float('nan'),
            'pr_auc': float(average_precision_score(truth, score)) if truth.any() else
            float('nan'),
            'support': int(truth.sum())})
    macro = {'class': 'macro average', 'support': int(labels.sum())}
    for key in COLUMNS[1:-1]:
        values = np.array([row[key] for row in rows])
        macro[key] = float(np.nanmean(values)) if np.any(np.isfinite(values)) else float('nan')
    rows.append(macro)
    files.write_csv(os.path.join(folder, 'performance.csv'), rows, COLUMNS)
    save_figure(_curves(labels, probs, names, 'roc'), os.path.join(folder, 'roc.png'))
    save_figure(_curves(labels, probs, names, 'pr'), os.path.join(folder, 'precision_recall.png'))
    page = _page(rows, multilabel)
    files.atomic_write(os.path.join(folder, 'performance.html'), lambda f: f.write(page))
    return rows


def _curves(labels, probs, names, kind):
    """ROC (``'roc'``) or precision-recall (``'pr'``) curves, one per class."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6, 5), dpi=100, layout='constrained')
    ax = figure.add_subplot()
    for c, name in enumerate(names):
        truth, score = labels[:, c] > 0, probs[:, c]
        if kind == 'roc' and 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, score)
            ax.plot(fpr, tpr, label=f'{name} (AUC {roc_auc_score(truth, score):.3f})')
        elif kind == 'pr' and truth.any():
            precision, recall, _ = precision_recall_curve(truth, score)
            ax.step(recall, precision, where='post',
                    label=f'{name} (AP {average_precision_score(truth, score):.3f})')
    if kind == 'roc':
        ax.plot([0, 1], [0, 1], color='0.6', lw=1, ls='--')
        ax.set(xlabel='false positive rate', ylabel='true positive rate', title='ROC')
    else:
        ax.set(xlabel='recall', ylabel='precision', title='Precision-recall')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize='small', loc='lower right' if kind == 'roc' else 'lower left')
    return figure


def _page(rows, multilabel):
    e = html.escape
    head = ''.join(f'<th>{e(c)}</th>' for c in COLUMNS)
    body = ''.join('<tr>' + ''.join(
        f'<td>{e(row[c] if isinstance(row[c], str) else f"{row[c]:.4g}")}</td>' for c in COLUMNS)
        + '</tr>' for row in rows)
    rule = 'probability ≥ 0.5 per class (multi-label)' if multilabel else 'the arg-max class'
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Performance'
            '</title><style>body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; } '
            'td, th { padding: 0.2em 0.8em; text-align: right; border-bottom: 1px solid #ddd; } '
            'td:first-child { text-align: left; } img { max-width: 48%; }</style></head>\n'
            f'<body>\n<h1>Performance per class</h1><p>Predicted class: {e(rule)}. ROC-AUC and '
            f'PR-AUC (average precision) rank each class one-vs-rest by its probability. '
            f'<a href="performance.csv">performance.csv</a></p>\n<table><tr>{head}</tr>{body}'
            '</table>\n<p><img src="roc.png" alt="ROC curves"> <img src="precision_recall.png" '
            'alt="precision-recall curves"></p>\n</body></html>\n')
