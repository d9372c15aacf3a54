"""The training loop against a plain PyTorch loop, batch-size invariance, label handling."""
import numpy as np
import pytest
import torch
from torch import nn

from base_model import (BaseModel, ClassificationModel, ConvClassificationNetwork,
                        ConvRegressionNetwork, LabelShapeError, RegressionModel)
from batch_generator import MatrixBatchGenerator
from conftest import cuda, onehot_motif_data
from constraints import MaxNormConstraint


def make_network(seed=0):
    torch.manual_seed(seed)
    return ConvClassificationNetwork(
        features=nn.Sequential(nn.Conv2d(4, 8, (1, 6)), nn.ReLU(), nn.Dropout(0.2),
                               nn.MaxPool2d((1, 35))),
        classifier=nn.Sequential(nn.Linear(8, 2)))


class Classifier(ClassificationModel):
    def init_model(self):
        network = make_network(self.config.get('seed', 0))
        optimizer = torch.optim.SGD(network.parameters(), lr=self.config.get('lr', 0.1))
        super().init_model(network, optimizer,
                           constraints=[MaxNormConstraint(self.config.get('max_norm', 1.0),
                                                          'features.0')])


def test_training_matches_a_plain_pytorch_loop():
    X, Y = onehot_motif_data(96, seed=0)
    model = Classifier({'lr': 0.5, 'max_norm': 0.8}, device='cpu')
    gen = MatrixBatchGenerator(X, Y, batch_size=32, shuffle=True, seed=7)
    torch.manual_seed(123)
    for _ in range(3):
        result = model.train_epoch(gen)

    # the reference: the same batches, written by hand
    network = make_network(0)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    order_rng = np.random.default_rng(7)
    torch.manual_seed(123)
    losses = []
    for _ in range(3):
        order = order_rng.permutation(96)
        losses = []
        for start in range(0, 96, 32):
            index = order[start:start + 32]
            x, y = torch.from_numpy(X[index]), torch.from_numpy(Y[index]).long()
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(network(x)['y_pred_loss'], y)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                w = network.features[0].weight
                norms = w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                w.mul_(torch.clamp(0.8 / norms, max=1.0))
            losses.append(loss.item())
    for ours, ref in zip(model.network.parameters(), network.parameters()):
        assert torch.allclose(ours, ref, atol=1e-6)
    assert np.isclose(result['loss'], np.mean(losses), atol=1e-6)
    assert set(result) == {'loss', 'accuracy', 'auroc'}


def test_batch_size_never_changes_evaluation():
    X, Y = onehot_motif_data(70, seed=1)
    model = Classifier({}, device='cpu')
    gen = MatrixBatchGenerator(X, Y)  # batch_size None: evaluation batches come from the caller
    outputs = [model.predict(gen, batch_size) for batch_size in (1, 7, 64, 1000)]
    values = [model.evaluate(gen, batch_size) for batch_size in (1, 7, 64, 1000)]
    for out, val in zip(outputs[1:], values[1:]):
        assert np.allclose(out, outputs[0], atol=1e-6)
        for key in values[0]:
            assert np.isclose(val[key], values[0][key], atol=1e-6)
    assert outputs[0].shape == (70, 2) and np.allclose(outputs[0].sum(1), 1)


def test_evaluation_restores_train_mode_and_is_deterministic_with_dropout():
    X, Y = onehot_motif_data(20)
    model = Classifier({}, device='cpu')
    model.network.train()
    gen = MatrixBatchGenerator(X, Y)
    a, b = model.predict(gen, 8), model.predict(gen, 8)
    assert np.array_equal(a, b) and model.network.training
    model.network.eval()
    model.predict(gen, 8)
    assert not model.network.training


@pytest.mark.parametrize('labels', [
    lambda y: y,                                  # float 0/1, shape (n,)
    lambda y: y.astype(np.int64).reshape(-1, 1),  # int indices, shape (n, 1)
    lambda y: np.eye(2, dtype=np.float32)[y.astype(int)],  # one-hot (n, 2)
])
def test_classification_label_forms_give_the_same_loss(labels):
    X, Y = onehot_motif_data(40, seed=2)
    model = Classifier({}, device='cpu')
    reference = Classifier({}, device='cpu').evaluate(MatrixBatchGenerator(X, Y), 16)
    assert np.isclose(model.evaluate(MatrixBatchGenerator(X, labels(Y)), 16)['loss'],
                      reference['loss'], atol=1e-6)


@pytest.mark.parametrize('Y, match', [
    (np.full(40, 3.0, np.float32), r'class indices in \[0, 2\).*3'),
    (np.zeros((40, 5), np.float32), r'labels have shape \(8, 5\) but the network outputs '
                                   r'\(8, 2\) \(a batch of 8 rows, 2 classes\)'),
    (np.full(40, 0.5, np.float32), 'class indices'),
])
def test_labels_that_do_not_fit_the_output(Y, match):
    X, _ = onehot_motif_data(40)
    with pytest.raises(LabelShapeError, match=match):
        Classifier({}, device='cpu').train_epoch(MatrixBatchGenerator(X, Y, 8))


class Regressor(RegressionModel):
    def init_model(self):
        torch.manual_seed(0)
        network = ConvRegressionNetwork(nn.Sequential(nn.Conv2d(4, 3, (1, 5))),
                                        nn.Sequential(nn.Linear(3 * 36, self.config['targets'])))
        super().init_model(network, torch.optim.Adam(network.parameters(), 1e-2))


def test_regression_shapes_and_metrics():
    X, _ = onehot_motif_data(30)
    y = X[:, 0, 0, :].sum(1)
    model = Regressor({'targets': 1}, device='cpu')
    assert model.predict(MatrixBatchGenerator(X), 8).shape == (30,)
    for labels in (y, y.reshape(-1, 1)):
        values = model.evaluate(MatrixBatchGenerator(X, labels), 8)
        assert set(values) == {'loss', 'mse', 'pearson'} and np.isclose(values['loss'],
                                                                         values['mse'], rtol=1e-5)
    two = Regressor({'targets': 2}, device='cpu')
    assert two.predict(MatrixBatchGenerator(X), 8).shape == (30, 2)
    with pytest.raises(LabelShapeError, match=r'labels have shape \(8,\) but the network outputs'):
        two.train_epoch(MatrixBatchGenerator(X, y, 8))


def test_contract_errors():
    class NoInit(BaseModel):
        pass
    with pytest.raises(NotImplementedError, match='NoInit must implement init_model'):
        NoInit({})

    class WrongOptimizer(ClassificationModel):
        def init_model(self):
            network = make_network()
            super().init_model(network, nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match='optimizer must be a torch.optim.Optimizer'):
        WrongOptimizer({})

    class VectorLoss(BaseModel):
        def init_model(self):
            network = nn.Linear(3, 2)
            super().init_model(network, lambda y, p: (p - y) ** 2,
                               torch.optim.SGD(network.parameters(), 0.1))
    model = VectorLoss({})
    with pytest.raises(ValueError, match=r'criterion must return a scalar tensor, got \(4, 2\)'):
        model.train_epoch(MatrixBatchGenerator(np.zeros((4, 3), np.float32),
                                               np.zeros((4, 2), np.float32), 4))


def test_classification_model_accepts_a_custom_criterion_and_plain_logits():
    class Custom(ClassificationModel):
        def init_model(self):
            network = nn.Sequential(nn.Flatten(), nn.Linear(4 * 40, 3))
            weights = torch.tensor([1.0, 2.0, 3.0])
            criterion = lambda y, p: nn.functional.cross_entropy(p, y.long(), weight=weights)
            super().init_model(network, criterion, torch.optim.SGD(network.parameters(), 0.1))
    X, _ = onehot_motif_data(12)
    Y = np.arange(12) % 3
    model = Custom({}, device='cpu')
    values = model.evaluate(MatrixBatchGenerator(X, Y), 5)
    assert set(values) == {'loss', 'accuracy', 'auroc'}
    assert np.allclose(model.predict(MatrixBatchGenerator(X), 5).sum(1), 1)  # softmax of logits


@cuda
def test_training_on_cuda():
    X, Y = onehot_motif_data(64)
    model = Classifier({}, device='cuda')
    result = model.train_epoch(MatrixBatchGenerator(X, Y, 16, shuffle=True))
    assert np.isfinite(result['loss']) and next(model.network.parameters()).is_cuda


class Stopping(Classifier):
    early_stopping_patience = 2
    reduce_lr_patience = 1


def test_early_stopping_and_plateau_schedule():
    model = Stopping({'lr': 0.1}, device='cpu')
    rewards = [0.5, 0.6, 0.55, 0.58, 0.7]
    stops = [model.end_epoch({'hyperband_reward': r, 'val_loss': -r}) for r in rewards[:4]]
    assert stops == [False, False, False, True]
    # val_loss did not fall for 2 epochs: the rate was halved once the patience of 1 ran out
    assert model.optimizer.param_groups[0]['lr'] == pytest.approx(0.05)
    state = model.state_dict()
    other = Stopping({'lr': 0.1}, device='cpu')
    other.load_state_dict(state)
    assert other.stopping == model.stopping
    assert other.optimizer.param_groups[0]['lr'] == pytest.approx(0.05)
    assert other.plateau.state_dict() == model.plateau.state_dict()


def test_strand_average_is_invariant_to_the_strand():
    class Averaged(Classifier):
        strand_average = True
    X, Y = onehot_motif_data(20)
    from dlutil.sequences.onehot import reverse_complement
    model = Averaged({}, device='cpu')
    forward = model.predict(MatrixBatchGenerator(X), 8)
    backward = model.predict(MatrixBatchGenerator(reverse_complement(X)), 8)
    assert np.allclose(forward, backward, atol=1e-6)
    plain = Classifier({}, device='cpu').predict(MatrixBatchGenerator(X), 8)
    assert not np.allclose(forward, plain)


def test_bf16_autocast_on_cpu_trains_and_reports_float32():
    class Mixed(Classifier):
        amp = 'bf16'
    X, Y = onehot_motif_data(32)
    model = Mixed({}, device='cpu')
    result = model.train_epoch(MatrixBatchGenerator(X, Y, 16))
    assert np.isfinite(result['loss'])
    assert model.predict(MatrixBatchGenerator(X), 16).dtype == np.float32
    with pytest.raises(ValueError, match="'fp16' needs CUDA"):
        type('Half', (Classifier,), {'amp': 'fp16'})({}, device='cpu')


def test_multilabel_model_matches_torch_and_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from base_model import MultiLabelModel

    class Tasks(MultiLabelModel):
        task_names = ['ctcf', 'dnase', 'p300']

        def init_model(self):
            torch.manual_seed(0)
            network = nn.Sequential(nn.Flatten(), nn.Linear(4 * 40, 3))
            super().init_model(network, torch.optim.SGD(network.parameters(), 0.1))
    X, _ = onehot_motif_data(60)
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 3)) < 0.4).astype(np.float32)
    model = Tasks({}, device='cpu')
    values = model.evaluate(MatrixBatchGenerator(X, Y), 16)
    with torch.no_grad():
        logits = model.network(torch.from_numpy(X))
    assert np.isclose(values['loss'], nn.functional.binary_cross_entropy_with_logits(
        logits, torch.from_numpy(Y)).item(), atol=1e-6)
    probs = torch.sigmoid(logits).numpy()
    assert np.isclose(values['auroc_dnase'], roc_auc_score(Y[:, 1], probs[:, 1]))
    assert np.isclose(values['auprc_p300'], average_precision_score(Y[:, 2], probs[:, 2]))
    assert np.isclose(values['auroc'], np.mean([roc_auc_score(Y[:, t], probs[:, t])
                                                for t in range(3)]))
    assert np.allclose(model.predict(MatrixBatchGenerator(X), 7), probs, atol=1e-6)
    with pytest.raises(LabelShapeError, match='one 0/1 label per task'):
        model.evaluate(MatrixBatchGenerator(X, Y[:, :2]), 16)
