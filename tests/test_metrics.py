"""Metrics against scikit-learn and numpy as references."""
import numpy as np
from sklearn.metrics import roc_auc_score

from dlutil.training import metrics


def test_binary_auroc_uses_probability_of_class_1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p1 = np.clip(y * 0.3 + rng.random(100) * 0.7, 0, 1)
    probs = np.stack([1 - p1, p1], axis=1)
    assert np.isclose(metrics.auroc(y, probs), roc_auc_score(y, p1))
    assert np.isclose(metrics.auroc(y.astype(np.float32).reshape(-1, 1), probs),
                      roc_auc_score(y, p1))


def test_multiclass_auroc_is_macro_one_vs_rest():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3)) + np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = roc_auc_score(y, probs, multi_class='ovr', average='macro')
    assert np.isclose(metrics.auroc(y, probs), expected)
    assert np.isclose(metrics.auroc(np.eye(3)[y], probs), expected)  # one-hot labels


def test_undefined_metrics_are_nan_not_errors():
    probs = np.full((5, 2), 0.5)
    assert np.isnan(metrics.auroc(np.zeros(5), probs))
    assert np.isnan(metrics.pearson(np.ones(5), np.arange(5.0)))
    assert np.isnan(metrics.auroc(np.array([0, 1, 0]), np.full((3, 2), np.nan)))


def test_accuracy_mse_pearson():
    assert metrics.accuracy(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])) \
        == 2 / 3
    a, b = np.array([1.0, 2.0, 4.0]), np.array([[1.5], [2.0], [3.0]])
    assert np.isclose(metrics.mse(a, b), (0.25 + 0 + 1) / 3)
    assert np.isclose(metrics.pearson(a, b), np.corrcoef(a, b.ravel())[0, 1])


def test_multilabel_scores():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.3], [0.7, 0.2], [0.1, 0.4]])
    auc = metrics.multilabel_auroc(y, p)
    assert auc[0] == 1.0 and np.isnan(auc[1])
    assert metrics.multilabel_auprc(y, p)[0] == 1.0
