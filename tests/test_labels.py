"""Labels, input dtypes and float32 losses: one normaliser for the loss, the metrics and reports."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from base_model import DataShapeError, LabelShapeError, RegressionModel
from batch_generator import MatrixBatchGenerator
from conftest import cuda, onehot_motif_data
from dlutil.training import metrics
from dlutil.sequences.onehot import decode, one_hot, reverse_complement
from dlutil.training import labels
from test_base_model import Classifier


# -- the three predecessors, as they were (commit 8fa32e3), for their valid inputs -------------
def old_metrics_class_indices(y_true, n_classes):
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] == n_classes and n_classes > 1:
        return y_true.argmax(axis=1)
    return y_true.reshape(len(y_true)).astype(np.int64)


def old_label_matrix(y, n_classes=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.astype(np.float32)
    flat = y.reshape(len(y)).astype(np.int64)
    return np.eye(max(int(n_classes or 2), 2), dtype=np.float32)[flat]


def old_loss_targets(y_true_t, n_classes):
    """base_model.ClassificationModel.class_targets: float rows as they are, else indices."""
    if y_true_t.dim() == 2 and y_true_t.shape[1] == n_classes and y_true_t.is_floating_point():
        return y_true_t
    return y_true_t.reshape(len(y_true_t)).long()


INDICES = np.array([0, 2, 1, 1, 0, 2, 2, 0])
VALID = {  # name -> (labels, what the old loss accepted)
    'float indices': (INDICES.astype(np.float32), True),
    'int64 (n, 1)': (INDICES.reshape(-1, 1), True),
    'uint8': (INDICES.astype(np.uint8), True),
    'float one-hot': (np.eye(3, dtype=np.float32)[INDICES], True),
    'int one-hot': (np.eye(3, dtype=np.int64)[INDICES], False),  # refused before, by mistake
    'bool one-hot': (np.eye(3, dtype=bool)[INDICES], False),
}


@pytest.mark.parametrize('name', list(VALID))
def test_one_normaliser_agrees_with_each_predecessor_on_valid_labels(name):
    y, old_loss_ok = VALID[name]
    assert np.array_equal(labels.class_indices(y, 3), old_metrics_class_indices(y, 3))
    assert np.array_equal(labels.label_matrix(y, 3), old_label_matrix(y, 3))
    logits = torch.randn(len(y), 3, generator=torch.Generator().manual_seed(0))
    target, fault = labels.class_targets(torch.as_tensor(y), 3)
    assert not fault[0]
    reference = F.cross_entropy(logits, torch.as_tensor(INDICES))
    assert torch.allclose(F.cross_entropy(logits, target), reference, atol=1e-6)
    if old_loss_ok:
        old = F.cross_entropy(logits, old_loss_targets(torch.as_tensor(y), 3))
        assert torch.allclose(F.cross_entropy(logits, target), old, atol=1e-6)


@pytest.mark.parametrize('dtype', [np.int64, np.uint8, np.bool_])
def test_a_classifier_takes_integer_one_hot_labels(dtype):
    X, Y = onehot_motif_data(40, seed=2)
    reference = Classifier({}, device='cpu').evaluate(MatrixBatchGenerator(X, Y), 16)
    one_hot_rows = np.eye(2, dtype=dtype)[Y.astype(int)]
    assert Classifier({}, device='cpu').evaluate(MatrixBatchGenerator(X, one_hot_rows), 16)[
        'loss'] == pytest.approx(reference['loss'], abs=1e-6)


def test_binary_bool_labels_and_soft_labels():
    assert labels.class_indices(np.zeros(0), 2).shape == (0,)  # an empty batch is no fault
    assert np.array_equal(labels.class_indices(np.array([True, False, True]), 2), [1, 0, 1])
    soft = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    target, fault = labels.class_targets(soft, 2)
    assert not fault[0] and target.dtype == torch.float32  # probabilities reach the loss as such
    assert np.array_equal(labels.class_indices(soft, 2), [0, 1])


@pytest.mark.parametrize('bad, shown', [(2.0, 'found 2 '), (-100.0, 'found -100 '),
                                         (0.5, 'found 0.5 '), (np.nan, 'found nan ')])
def test_a_bad_label_in_a_later_batch_is_named_in_training_evaluation_and_metrics(bad, shown):
    X, Y = onehot_motif_data(40, seed=3)
    Y = Y.copy()
    Y[37] = bad  # batch 4 of 4 at batch size 10: the old check saw only the first batch
    with pytest.raises(LabelShapeError, match=r'class indices in \[0, 2\).*' + shown):
        Classifier({}, device='cpu').train_epoch(MatrixBatchGenerator(X, Y, 10))
    with pytest.raises(LabelShapeError, match=shown):
        Classifier({}, device='cpu').evaluate(MatrixBatchGenerator(X, Y), 10)
    with pytest.raises(LabelShapeError, match=shown):
        metrics.accuracy(Y, np.full((40, 2), 0.5))


@pytest.mark.parametrize('dtype', [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize('bad, shown', [(2, 'found 2 '), (200, 'found 200 ')])
def test_integer_labels_out_of_range_in_a_later_batch_are_named(dtype, bad, shown):
    """Integer class indices take the loop's one-pass check (valid batches build no fault
    tensor); a bad one in the last batch still stops the epoch, with row and value."""
    X, Y = onehot_motif_data(40, seed=3)
    Y = Y.astype(dtype)
    Y[37] = bad
    with pytest.raises(LabelShapeError, match=r'class indices in \[0, 2\).*' + shown
                       + r'\(row 7 of a batch\)'):
        Classifier({}, device='cpu').train_epoch(MatrixBatchGenerator(X, Y, 10))
    target, fault = labels.class_targets(torch.tensor([0, 1, 1]), 2)
    assert target.dtype == torch.int64 and not fault[0]


def test_bad_one_hot_and_probability_rows_are_refused():
    for y in (np.array([[1, 1], [0, 1]]), np.array([[0.7, 0.7], [0.0, 1.0]], np.float32),
              np.array([[2, -1], [0, 1]])):
        with pytest.raises(LabelShapeError, match='row 0 of a batch sums to'):
            labels.class_indices(y, 2)
    with pytest.raises(LabelShapeError, match='must be 0/1 rows.*found 0.7'):
        labels.label_matrix(np.array([[0.7, 0.3], [0.0, 1.0]]))


def test_deferred_faults_report_the_first_bad_batch_once_per_epoch():
    """The CUDA path, on the CPU: faults are folded on the device and read by one check."""
    faults = labels.Faults(defer=True)
    for y in ([0, 1, 1], [1, 7, 0], [9, 0, 0]):
        target, fault = labels.class_targets(torch.tensor(y), 3)
        assert int(target.max()) <= 2  # clamped: never an out-of-range index for the loss
        faults.add(fault, 3)
    with pytest.raises(LabelShapeError, match=r'found 7 \(row 1 of a batch\)'):
        faults.check()
    faults.check()  # cleared by the check
    faults.add(labels.class_targets(torch.tensor([0, 2]), 3)[1], 3)
    faults.check()


@cuda
def test_bad_labels_on_cuda_raise_at_the_end_of_the_epoch_without_a_device_assert():
    X, Y = onehot_motif_data(40, seed=3)
    Y = Y.copy()
    Y[37] = 5
    model = Classifier({}, device='cuda')
    with pytest.raises(LabelShapeError, match='found 5'):
        model.train_epoch(MatrixBatchGenerator(X, Y, 10))
    Y[37] = 1
    assert np.isfinite(model.train_epoch(MatrixBatchGenerator(X, Y, 10))['loss'])


# -- inputs of integer dtype, float32 losses ----------------------------------------------------
@pytest.mark.parametrize('dtype', [np.uint8, np.bool_, np.int64])
def test_integer_and_bool_inputs_train_as_float32(dtype):
    X, Y = onehot_motif_data(32, seed=4)
    reference = Classifier({}, device='cpu')
    stored = Classifier({}, device='cpu')
    torch.manual_seed(0)
    a = reference.train_epoch(MatrixBatchGenerator(X, Y, 16, shuffle=True))
    torch.manual_seed(0)
    b = stored.train_epoch(MatrixBatchGenerator(X.astype(dtype), Y, 16, shuffle=True))
    assert a['loss'] == pytest.approx(b['loss'], abs=1e-6)
    assert np.allclose(stored.predict(MatrixBatchGenerator(X.astype(dtype)), 8),
                       reference.predict(MatrixBatchGenerator(X), 8), atol=1e-6)


def test_input_dtype_none_keeps_token_indices_for_an_embedding():
    class Tokens(RegressionModel):
        input_dtype = None

        def init_model(self):
            network = nn.Sequential(nn.Embedding(4, 3), nn.Flatten(), nn.Linear(15, 1))
            super().init_model(network, torch.optim.SGD(network.parameters(), 0.1))
    X = np.random.default_rng(0).integers(0, 4, size=(12, 5))
    result = Tokens({}, device='cpu').train_epoch(MatrixBatchGenerator(X, X.sum(1), 4))
    assert np.isfinite(result['loss'])


class Counts(RegressionModel):
    amp = 'bf16'

    def init_model(self):
        network = nn.Linear(1, 1)
        super().init_model(network, torch.optim.SGD(network.parameters(), 0.0))


def test_losses_are_float32_under_autocast_and_targets_are_never_cast_down():
    model = Counts({}, device='cpu')
    y_true = torch.tensor([70001.0, 123457.0])  # bf16 keeps 8 bits: 70001 -> 70144
    y_pred = torch.tensor([70000.0, 123456.0]).to(torch.bfloat16).float()
    with model.autocast():
        loss = model.compute_loss(y_true, y_pred.to(torch.bfloat16))
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(float(F.mse_loss(y_pred, y_true)), rel=1e-6)


@cuda
def test_fp16_counts_above_65504_stay_finite():
    class Half(Counts):
        amp = 'fp16'
    model = Half({}, device='cuda')
    x = np.ones((8, 1), np.float32)
    result = model.evaluate(MatrixBatchGenerator(x, np.full(8, 1e6, np.float32)), 8)
    assert np.isfinite(result['loss']) and result['loss'] > 1e11


def test_pearson_is_the_mean_of_per_target_correlations():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3)) + [0, 100, -50]   # each target has its own mean
    pred = rng.normal(size=(200, 3)) + [0, 100, -50]  # uncorrelated within each target
    pred[:, 0] = y[:, 0] + 0.1 * rng.normal(size=200)
    expected = np.mean([np.corrcoef(y[:, t], pred[:, t])[0, 1] for t in range(3)])
    assert metrics.pearson(y, pred) == pytest.approx(expected, abs=1e-12)
    assert metrics.pearson(y, pred) < 0.5  # pooled, the means alone give r close to 1
    assert metrics.pearson(y[:, 0], pred[:, 0]) == pytest.approx(
        np.corrcoef(y[:, 0], pred[:, 0])[0, 1])
    y[:, 2] = 1.0  # a constant target is left out of the mean
    kept = np.mean([np.corrcoef(y[:, t], pred[:, t])[0, 1] for t in range(2)])
    assert metrics.pearson(y, pred) == pytest.approx(kept, abs=1e-12)


# -- strand averaging ---------------------------------------------------------------------------
def test_reverse_complement_of_aacg_is_cgtt():
    x = one_hot('AACG')[None]  # shape (1, 4, 4)
    assert decode(reverse_complement(x)[0]) == 'CGTT'
    assert decode(reverse_complement(torch.from_numpy(x))[0].numpy()) == 'CGTT'
    assert decode(reverse_complement(x[:, :, None, :])[0, :, 0]) == 'CGTT'


def test_strand_averaging_refuses_inputs_that_are_not_4_channel():
    class Averaged(Classifier):
        strand_average = True
    model = Averaged({}, device='cpu')
    X = np.zeros((6, 5, 1, 40), np.float32)  # 5 channels: not ACGT
    with pytest.raises(DataShapeError, match=r'strand_average needs one-hot DNA.*\(6, 5, 1, 40\)'):
        model.predict(MatrixBatchGenerator(X), 8)
