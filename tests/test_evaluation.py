"""The one evaluation path (:mod:`dlutil.training.evaluation`): every command scores in eval mode
and puts the network's modes back, also when scoring fails; a 0-d output is named."""
import numpy as np
import pytest
import torch
from torch import nn

from dlutil.data.matrix import MatrixBatchGenerator
from dlutil.sequences.onehot import encode_batch
from dlutil.training.evaluation import evaluating, score
from dlutil.training.tasks import ClassificationModel
from planted_motif import planted_sequences

LENGTH = 20


def modes(network):
    return [module.training for module in network.modules()]


def test_evaluating_restores_every_modules_mode_also_on_error():
    network = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    network.train()
    network[2].eval()  # a frozen batch norm inside a network that trains
    before = modes(network)
    with evaluating(network):
        assert not any(modes(network)) and not torch.is_grad_enabled()
    assert modes(network) == before == [True, True, True, False]
    with pytest.raises(RuntimeError, match='boom'):
        with evaluating(network):
            raise RuntimeError('boom')
    assert modes(network) == before and torch.is_grad_enabled()
    with evaluating(network, grad=True):  # attributions need gradients in eval mode
        assert torch.is_grad_enabled() and not any(modes(network))
    assert modes(network) == before


class Net(nn.Module):
    """A first-layer convolution, then dropout: train mode would make every score random."""

    def __init__(self):
        super().__init__()
        self.seq_len = LENGTH
        self.conv = nn.Conv1d(4, 3, 5)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.linear = nn.Linear(3, 2)
        self.fail = False

    def forward(self, x):
        if self.fail:
            raise RuntimeError('the network failed')
        return self.linear(self.drop(self.pool(self.relu(self.conv(x))).flatten(1)))


class Model(ClassificationModel):
    def init_model(self):
        torch.manual_seed(0)
        network = Net()
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.1))


def commands():
    """What each command runs to score: name -> f(model, X, Y)."""
    from dlutil.interpret.attributions import deep_lift_shap, gradient_x_input, ism
    from dlutil.interpret.kernel_activations import get_max_activations
    from dlutil.interpret.sequence_model import input_shape
    from dlutil.training.summary import summary
    from dlutil.variants.effects import VariantScorer
    return {
        '-e/-p': lambda m, X, Y: m.predict(MatrixBatchGenerator(X), 4),
        '--vep': lambda m, X, Y: VariantScorer(m, (4, LENGTH))(X)[0],
        'input_shape': lambda m, X, Y: str(input_shape(m)),
        '--attribute dls': lambda m, X, Y: deep_lift_shap(m, X[:2], n_shuffles=2).attributions,
        '--attribute ism': lambda m, X, Y: ism(m, X[:1], start=3, end=6),
        '--attribute grad': lambda m, X, Y: gradient_x_input(m, X[:2]),
        '--interpret': lambda m, X, Y: get_max_activations(
            m, MatrixBatchGenerator(X, Y), 4)['activations'],
        'summary': lambda m, X, Y: summary(m.network, (4, LENGTH)),
    }


@pytest.mark.parametrize('command', list(commands()))
def test_every_command_scores_in_eval_mode_and_restores_the_modes(command):
    run = commands()[command]
    X = encode_batch([s.encode() for s in planted_sequences(6, LENGTH, motif='ACGT')])
    Y = np.array([0, 1, 0, 1, 1, 0])
    model = Model({}, device='cpu')
    network = model.network
    network.train()
    network.conv.eval()  # a module the user froze stays frozen
    before = modes(network)
    first, second = run(model, X, Y), run(model, X, Y)
    if not isinstance(first, str):  # dropout off while scoring: the same numbers twice
        np.testing.assert_array_equal(first, second)
    assert modes(network) == before
    network.fail = True
    with pytest.raises((RuntimeError, ValueError), match='the network failed'):
        run(model, X, Y)
    assert modes(network) == before


def test_scoring_applies_the_models_settings_once():
    """score() is what predict_batches runs: the model's to_input and strand averaging."""
    from dlutil.sequences.onehot import reverse_complement

    class Averaged(Model):
        strand_average = True

        def to_input(self, x):
            return super().to_input(x) * 2

    model = Averaged({}, device='cpu')
    X = encode_batch([s.encode() for s in planted_sequences(5, LENGTH, motif='ACGT')])
    x = torch.from_numpy(X) * 2
    with evaluating(model.network):
        by_hand = (model.network(x) + model.network(reverse_complement(x))) / 2
        np.testing.assert_allclose(score(model, X).numpy(), by_hand.numpy(), atol=1e-6)
    np.testing.assert_allclose(model.predict(MatrixBatchGenerator(X), 2),
                               torch.softmax(by_hand, 1).numpy(), atol=1e-6)


SCALAR_DEF = '''
import os

import torch
from torch import nn

from base_model import ClassificationModel
from batch_generator import H5pyBatchGenerator


def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size)


def get_val_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))


class ToScalar(nn.Module):
    def forward(self, x):
        return x.sum()


class Model(ClassificationModel):
    def init_model(self):
        network = nn.Sequential(nn.Flatten(), nn.Linear(160, 2), ToScalar())
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.1))


def get_config():
    return {}
'''


def test_a_0d_network_output_is_named_not_an_index_error(cli, h5_data, tmp_path):
    path = tmp_path / 'scalar_def.py'
    path.write_text(SCALAR_DEF)
    code, err = cli('-f', path, '-d', h5_data, '-r', tmp_path / 'res', '-y', '-ep', 1, '-bs', 32,
                    '-c')
    assert code == 1 and 'Traceback' not in err and 'IndexError' not in err
    assert 'returned an output of shape () (0-d); it must return one row per input' in err
    assert not (tmp_path / 'res' / 'trials').exists(), err  # found before any trial
