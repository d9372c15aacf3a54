"""models/pysster.py: the seed's parameter table, layer shapes and parameter counts computed by
hand, the recurrent layers against torch.nn.LSTM/GRU, the model's training settings, and the
example run end to end through the CLI."""
import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from batch_generator import MatrixBatchGenerator
from conftest import cuda
from models.pysster import (PYSSTER_DEFAULTS, DataLayoutError, PyssterModel,
                            PyssterMultiLabelModel, PyssterNetwork, RecurrentLayer,
                            pysster_model_class, pysster_params)
from dlutil.training.summary import summary

EXAMPLE = Path(__file__).resolve().parents[1] / 'examples' / 'pysster'

# the seed's two tables (pysster's Model documentation), copied by hand
SEED_TABLE = {'conv_num': 2, 'kernel_num': 30, 'kernel_len': 25, 'pool_size': 2,
              'pool_stride': 2, 'dense_num': 1, 'neuron_num': 100, 'dropout_input': 0.1,
              'dropout_conv': 0.3, 'dropout_dense': 0.6, 'batch_size': 128,
              'learning_rate': 0.0005, 'patience_lr': 5, 'patience_stopping': 15,
              'epochs': 500, 'kernel_constraint': 3, 'rnn_type': None, 'rnn_num': 1,
              'rnn_units': 32, 'rnn_bidirectional': True, 'rnn_dropout_input': 0.2,
              'rnn_dropout_recurrent': 0.0}
LAYOUT = {'n_channels': 4, 'seq_len': 300, 'n_classes': 3}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def layers(network):
    """(name, type) of the layers with parameters, in registration order (a recurrent layer's
    own Linear modules left out)."""
    inside_rnn = tuple(name + '.' for name, m in network.named_modules()
                       if isinstance(m, RecurrentLayer))
    return [(name, type(m).__name__) for name, m in network.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Linear, RecurrentLayer))
            and not name.startswith(inside_rnn)]


# -- the parameter table ----------------------------------------------------------------------
def test_defaults_are_the_seed_table():
    assert PYSSTER_DEFAULTS == SEED_TABLE
    assert pysster_params({}) == SEED_TABLE
    network = PyssterNetwork(4, 300, 3)
    assert network.params == SEED_TABLE


def test_default_network_shapes_and_parameter_counts():
    network = PyssterNetwork(4, 300, 3)
    # the seed's note: 300 - 25 + 1 = 276 after the first convolution, 138 after pooling
    assert [(n, type(m).__name__) for n, m in network.named_modules() if n][0] == \
        ('conv', 'ModuleList')
    assert layers(network)[0] == ('conv.0', 'Conv1d')
    conv0 = 4 * 25 * 30 + 30            # channels × kernel_len × kernels + biases = 3030
    conv1 = 30 * 25 * 30 + 30           # 22530
    flat = 30 * ((138 - 25 + 1) // 2)   # 276 → 138 → 114 → 57 positions × 30 kernels = 1710
    dense = flat * 100 + 100            # 171100
    output = 100 * 3 + 3                # 303
    assert [n_params(m) for m in (network.conv[0], network.conv[1], network.dense[0],
                                  network.output)] == [conv0, conv1, dense, output]
    assert n_params(network) == conv0 + conv1 + dense + output == 196963
    assert network(torch.zeros(2, 4, 300)).shape == (2, 3)


def test_parameters_change_the_layers():
    network = PyssterNetwork(4, 100, 2, conv_num=1, kernel_num=10, kernel_len=5, pool_size=3,
                             pool_stride=2, dense_num=2, neuron_num=7)
    assert layers(network) == [('conv.0', 'Conv1d'), ('dense.0', 'Linear'),
                               ('dense.1', 'Linear'), ('output', 'Linear')]
    positions = (100 - 5 + 1 - 3) // 2 + 1        # conv 96, pool (96 - 3) // 2 + 1 = 47
    assert [n_params(m) for _, m in network.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Linear))] == [
        4 * 5 * 10 + 10, 10 * positions * 7 + 7, 7 * 7 + 7, 7 * 2 + 2]
    assert network.pool[0].kernel_size == 3 and network.pool[0].stride == 2
    # no convolution and no dense layer: logistic regression on the flattened one-hot input
    bare = PyssterNetwork(4, 100, 2, conv_num=0, dense_num=0)
    assert layers(bare) == [('output', 'Linear')] and n_params(bare) == 4 * 100 * 2 + 2


def test_dropout_rates_reach_the_layers():
    network = PyssterNetwork(4, 300, 3, dropout_input=0.05, dropout_conv=0.2, dropout_dense=0.4)
    assert network.dropout_input.p == 0.05
    assert [d.p for d in network.dropout_conv] == [0.2, 0.2]
    assert [d.p for d in network.dropout_dense] == [0.4]


def test_rnn_options_add_recurrent_layers_of_the_right_size():
    lstm = PyssterNetwork(4, 300, 3, rnn_type='LSTM', rnn_num=2, rnn_units=8)
    assert [n for n, _ in layers(lstm)] == ['conv.0', 'conv.1', 'rnn.0', 'rnn.1', 'dense.0',
                                            'output']
    # Keras' count per direction: 4 gates × (units × (inputs + units) + units), two directions
    assert n_params(lstm.rnn[0]) == 2 * 4 * (8 * (30 + 8) + 8)
    assert n_params(lstm.rnn[1]) == 2 * 4 * (8 * (16 + 8) + 8)
    assert lstm.dense[0].in_features == 16  # the last layer's final output, both directions
    gru = PyssterNetwork(4, 300, 3, rnn_type='gru', rnn_units=8, rnn_bidirectional=False)
    # GRU (reset_after): 3 gates × (units × (inputs + units) + 2 biases)
    assert n_params(gru.rnn[0]) == 3 * (8 * (30 + 8) + 2 * 8)
    assert gru.dense[0].in_features == 8
    assert gru(torch.zeros(2, 4, 300)).shape == (2, 3)


@pytest.mark.parametrize('kind', ['LSTM', 'GRU'])
def test_recurrent_layer_matches_torch(kind):
    torch.manual_seed(0)
    layer = RecurrentLayer(kind, 5, 6, bidirectional=True, return_sequences=True).eval()
    reference = getattr(nn, kind)(5, 6, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for d, suffix in enumerate(('', '_reverse')):
            getattr(reference, f'weight_ih_l0{suffix}').copy_(layer.ih[d].weight)
            getattr(reference, f'bias_ih_l0{suffix}').copy_(layer.ih[d].bias)
            getattr(reference, f'weight_hh_l0{suffix}').copy_(layer.hh[d].weight)
            hh_bias = layer.hh[d].bias if kind == 'GRU' else torch.zeros(4 * 6)
            getattr(reference, f'bias_hh_l0{suffix}').copy_(hh_bias)
    x = torch.randn(3, 7, 5)
    expected, _ = reference(x)
    torch.testing.assert_close(layer(x), expected)
    layer.return_sequences = False  # final outputs: forward at the end, backward at position 0
    torch.testing.assert_close(layer(x), torch.cat([expected[:, -1, :6], expected[:, 0, 6:]], 1))


def test_recurrent_dropout_draws_one_mask_per_sequence(monkeypatch):
    torch.manual_seed(0)
    layer = RecurrentLayer('LSTM', 5, 6, bidirectional=False, dropout_input=0.2,
                           dropout_recurrent=0.5)
    x = torch.randn(3, 9, 5)
    drawn = []
    bernoulli = torch.bernoulli
    monkeypatch.setattr(torch, 'bernoulli', lambda p: drawn.append(p.shape) or bernoulli(p))
    layer.train()
    out = layer(x)
    assert drawn == [(3, 5), (3, 6)]  # inputs and hidden state, once for all 9 steps
    layer.eval()
    assert not torch.allclose(out, layer(x))  # the masks are used in training only
    assert torch.equal(layer(x), layer(x))


def test_shrinking_to_nothing_names_each_length():
    with pytest.raises(ValueError, match=r'shrink sequences of length 100 to nothing: input 100 '
                                         r'→ conv.0 76 → pool.0 38 → conv.1 14 → pool.1 7 → '
                                         r'conv.2 -17; use fewer layers \(conv_num=3\)'):
        PyssterNetwork(4, 100, 2, conv_num=3)
    with pytest.raises(ValueError, match='pool.0 0'):
        PyssterNetwork(4, 25, 2, conv_num=1)  # one position left, a pool of 2 needs two
    PyssterNetwork(4, 26, 2, conv_num=1)


def test_bad_parameters_are_reported_together():
    with pytest.raises(ValueError) as error:
        pysster_params({'kernal_num': 10, 'conv_num': 1.5, 'dropout_dense': 1.0,
                        'rnn_type': 'transformer', 'kernel_constraint': -1})
    message = str(error.value)
    for part in ("unknown parameter 'kernal_num' (did you mean 'kernel_num'?)",
                 'conv_num=1.5 (expected an integer ≥ 0)', 'dropout_dense=1.0',
                 "rnn_type='transformer'", 'kernel_constraint=-1'):
        assert part in message
    assert pysster_params({'conv_num': 3.0})['conv_num'] == 3  # hyperopt's quniform floats


def test_summary_lists_layers_in_call_order():
    network = PyssterNetwork(4, 300, 3, rnn_type='LSTM', rnn_units=8)
    text = summary(network, (4, 300))
    names = [line.split()[0] for line in text.splitlines()[3:-4]]
    assert names == ['dropout_input', 'conv.0', 'pool.0', 'dropout_conv.0', 'conv.1', 'pool.1',
                     'dropout_conv.1', 'rnn.0', 'dense.0', 'dropout_dense.0', 'output']
    assert '(None, 30, 276)' in text and '(None, 16)' in text
    assert f'total params: {n_params(network):,}' in text


# -- the model --------------------------------------------------------------------------------
def random_data(n=64, length=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 4, length), np.float32)
    X[np.arange(n)[:, None], rng.integers(0, 4, (n, length)), np.arange(length)] = 1
    return X, rng.integers(0, classes, n)


SMALL = {'conv_num': 1, 'kernel_num': 6, 'kernel_len': 5, 'neuron_num': 8, 'n_channels': 4,
         'seq_len': 40, 'n_classes': 3}


def test_model_training_settings():
    model = PyssterModel({**SMALL, 'learning_rate': 0.01, 'patience_lr': 3,
                          'patience_stopping': 7, 'kernel_constraint': 0.5}, device='cpu')
    assert isinstance(model.optimizer, torch.optim.Adam)
    assert model.optimizer.param_groups[0]['lr'] == 0.01
    assert model.reduce_lr_patience == 3 and model.reduce_lr_factor == 0.5
    assert model.plateau.patience == 3 and model.early_stopping_patience == 7
    X, y = random_data()
    model.train_epoch(MatrixBatchGenerator(X, y, 16, shuffle=True))
    for name in ('conv.0', 'dense.0', 'output'):  # max-norm on every layer's kernel
        weight = model.network.get_submodule(name).weight
        assert weight.flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    default = PyssterModel(dict(SMALL), device='cpu')
    assert default.optimizer.param_groups[0]['lr'] == 0.0005
    assert default.early_stopping_patience == 15 and default.plateau.patience == 5


def test_epochs_and_batch_size_from_the_configuration():
    X, y = random_data()
    model = PyssterModel({**SMALL, 'epochs': 2, 'batch_size': 10}, device='cpu')
    sizes = []
    model.train_step = lambda x, t: (sizes.append(len(x)), (torch.zeros(()), x[:, :3, 0]))[1]
    model.train_epoch(MatrixBatchGenerator(X, y, 32, shuffle=True))
    assert sizes == [10] * 6 + [4]  # the configuration's 10, not the generator's 32
    assert not model.end_epoch({'epoch': 1, 'val_loss': 1.0, 'hyperband_reward': -1.0})
    assert model.end_epoch({'epoch': 2, 'val_loss': 1.0, 'hyperband_reward': -1.0})


def test_single_and_multilabel_models():
    X, y = random_data()
    single = PyssterModel(dict(SMALL), device='cpu')
    values = single.evaluate(MatrixBatchGenerator(X, y))
    assert {'loss', 'accuracy', 'auroc'} <= set(values)
    assert single.predict(MatrixBatchGenerator(X)).sum(axis=1) == pytest.approx(np.ones(64))
    multi = PyssterMultiLabelModel({**SMALL, 'multilabel': True}, device='cpu')
    Y = np.eye(3, dtype=np.float32)[y]
    Y[::2, 0] = 1
    values = multi.evaluate(MatrixBatchGenerator(X, Y))
    assert {'loss', 'auroc', 'auprc', 'auroc_0'} <= set(values)
    assert pysster_model_class(True) is PyssterMultiLabelModel
    assert pysster_model_class(False) is PyssterModel
    with pytest.raises(DataLayoutError, match='must extend PyssterMultiLabelModel'):
        PyssterModel({**SMALL, 'multilabel': True}, device='cpu')


def test_missing_layout_and_layout_from_a_checkpoint():
    with pytest.raises(DataLayoutError, match='needs n_classes'):
        PyssterModel({'n_channels': 4, 'seq_len': 40}, device='cpu')

    class Fixed(PyssterModel):
        n_channels, seq_len, n_classes = 4, 40, 3
    trained = Fixed({'conv_num': 1}, device='cpu')
    state = trained.state_dict()

    class Unknown(PyssterModel):
        def data_layout(self):
            return None  # e.g. a def.py that has not read its data in this process
    model = Unknown({'conv_num': 1}, device='cpu')
    X, _ = random_data()
    with pytest.raises(DataLayoutError, match='not built'):
        model.predict(MatrixBatchGenerator(X))
    with pytest.raises(DataLayoutError, match='evaluation and prediction only'):
        model.load_state_dict(state)
    model.load_state_dict(state, optimizer=False)
    np.testing.assert_allclose(model.predict(MatrixBatchGenerator(X)),
                               trained.predict(MatrixBatchGenerator(X)), rtol=1e-6)
    # shorter inputs are padded at the end, as the loader pads
    padded = np.concatenate([X[:, :, :30], np.zeros((64, 4, 10), np.float32)], axis=2)
    np.testing.assert_allclose(model.predict(MatrixBatchGenerator(X[:, :, :30])),
                               model.predict(MatrixBatchGenerator(padded)), rtol=1e-6)
    with pytest.raises(ValueError, match=r'must have shape \(n, 4, length ≤ 40\)'):
        model.network(torch.zeros(1, 4, 41))
    # a centring network (saved as such in its layout) centres them
    centred = Fixed({'conv_num': 1}, device='cpu')
    centred.padding = 'center'
    centred.init_model()
    middle = np.concatenate([np.zeros((64, 4, 5), np.float32), X[:, :, :30],
                             np.zeros((64, 4, 5), np.float32)], axis=2)
    np.testing.assert_allclose(centred.predict(MatrixBatchGenerator(X[:, :, :30])),
                               centred.predict(MatrixBatchGenerator(middle)), rtol=1e-6)
    assert centred.network.layout.tolist() == [4, 40, 3, 1]


@cuda
def test_model_on_cuda_matches_cpu():
    X, y = random_data()
    cpu = PyssterModel({**SMALL, 'rnn_type': 'GRU', 'rnn_units': 4}, device='cpu')
    gpu = PyssterModel({**SMALL, 'rnn_type': 'GRU', 'rnn_units': 4}, device='cuda')
    gpu.load_state_dict(cpu.state_dict())
    gpu.train_epoch(MatrixBatchGenerator(X, y, 16, shuffle=True))
    cpu.load_state_dict(gpu.state_dict())
    np.testing.assert_allclose(gpu.predict(MatrixBatchGenerator(X)),
                               cpu.predict(MatrixBatchGenerator(X)), atol=1e-4)


# -- the example, end to end ------------------------------------------------------------------
def load_make_data():
    spec = importlib.util.spec_from_file_location('pysster_make_data', EXAMPLE / 'make_data.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_blocks_sit_at_their_offsets_from_the_middle():
    make_data = load_make_data()
    rng = np.random.default_rng(0)
    for name, blocks in make_data.PLANTED.items():
        for _ in range(5):
            sequence = make_data.make_sequence(rng, blocks, 100, 300, mutation_rate=0.0)
            for motif, offset in blocks:
                start = len(sequence) // 2 + offset
                assert sequence[start:start + len(motif)] == motif


def test_example_runs_end_to_end(tmp_path, cli):
    data, result = tmp_path / 'data', tmp_path / 'result'
    load_make_data().make_data(data, n=40, n_predict=4, min_length=180, max_length=200)
    # lower case, N, gzip and an unequal class: what real FASTA files bring
    extra = data / 'class_d_small.fa.gz'
    with gzip.open(extra, 'wt') as handle:
        handle.write(''.join(f'>d{i}\nacgtn{"ACGT" * 20}\n' for i in range(8)))
    args = ['-f', EXAMPLE / 'def.py', '-d', data, '-r', result, '-ep', 2, '-bs', 16, '-c',
            '--seed', 0]
    code, err = cli(*args, '-y', '-e', '-p', 'predict/*.fa')
    assert code == 0, err
    best = json.loads((result / 'best.json').read_text())
    assert set(best['config']) == {'conv_num', 'kernel_num', 'neuron_num', 'dropout_input',
                                   'dropout_conv', 'dropout_dense', 'learning_rate'}
    test = json.loads((result / 'test_result.json').read_text())
    assert {'loss', 'accuracy', 'auroc'} <= set(test)
    predictions = np.load(result / 'predictions' / 'sample.fa.npy')
    assert predictions.shape == (12, 4)
    np.testing.assert_allclose(predictions.sum(axis=1), 1, rtol=1e-5)
    # a later process that has not read the data: the network comes from the checkpoint
    code, err = cli(*args, '-e', '-p', 'predict/*.fa')
    assert code == 0, err
    assert json.loads((result / 'test_result.json').read_text()) == test
    np.testing.assert_allclose(np.load(result / 'predictions' / 'sample.fa.npy'), predictions,
                               rtol=1e-6)


def test_the_general_keys_of_every_ready_model_are_pysster_names_too():
    """lr / reduce_lr_patience / early_stopping_patience, as the zoo spells them, mean
    pysster's learning_rate / patience_lr / patience_stopping; giving both is refused."""
    model = PyssterModel({**SMALL, 'lr': 0.01, 'reduce_lr_patience': 3,
                          'early_stopping_patience': 7}, device='cpu')
    assert model.optimizer.param_groups[0]['lr'] == 0.01
    assert model.reduce_lr_patience == 3 and model.early_stopping_patience == 7
    with pytest.raises(ValueError, match="'lr' and 'learning_rate' are one setting"):
        PyssterModel({**SMALL, 'lr': 0.01, 'learning_rate': 0.1}, device='cpu')
