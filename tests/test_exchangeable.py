"""models.exchangeable: invariance, the layer syntax, a plain-PyTorch reference, train()/test()
on defiNETti's Gaussian toy, and the CLI path with a simulator defined in def.py."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import exchangeable_simulators as sims
from models.exchangeable import (ExchangeableClassifier, ExchangeableNetwork,
                                 ExchangeableRegressor, test, train)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POOLS = [('max',), ('sort',), ('top_k', 3), ('moments', 1, 2, 3)]


def outputs(network, x):
    y = network(x)
    return y['y_pred_loss'] if isinstance(y, dict) else y


@pytest.mark.parametrize('g', POOLS)
@pytest.mark.parametrize('input_shape, phi', [
    ((9, 7), [('conv', 3, 4), ('fc', 5)]),
    ((9, 7, 2), [('conv', 2, 4), ('conv', 3, 3)]),
])
@pytest.mark.parametrize('head', ['matmul', 'softmax'])
def test_rows_shuffled_give_the_same_output(g, input_shape, phi, head):
    torch.manual_seed(0)
    h = [('conv', 2, 3), ('fc', 6), (head,)] if phi[-1][0] == 'conv' else [('fc', 6), (head,)]
    network = ExchangeableNetwork(input_shape, (3,), phi, g, h)
    x = torch.randn((5,) + input_shape)
    shuffled = x[:, torch.randperm(input_shape[0])]
    y = outputs(network, x)
    assert y.shape == (5, 3)
    torch.testing.assert_close(outputs(network, shuffled), y, atol=1e-5, rtol=1e-5)
    # not vacuous: the positions are not exchangeable, and the output depends on the input
    moved = x[:, :, torch.roll(torch.arange(input_shape[1]), 1)]
    assert (outputs(network, moved) - y).abs().max() > 1e-4
    if head == 'softmax':
        torch.testing.assert_close(network(x)['y_pred'].sum(1), torch.ones(5))


def test_matches_a_plain_pytorch_reference():
    """φ = per-row fc, g = top 2, h = matmul, written out by hand."""
    torch.manual_seed(1)
    network = ExchangeableNetwork((6, 4, 2), (3,), [('fc', 5)], ('top_k', 2), [('matmul',)])
    x = torch.randn(3, 6, 4, 2)
    fc, out = network.phi[0].linear, network.out
    rows = x.reshape(3, 6, 8)                         # each row: positions × channels
    phi = torch.relu(rows @ fc.weight.T + fc.bias)    # (3, 6, 5)
    top = phi.sort(dim=1, descending=True).values[:, :2]   # (3, 2, 5)
    pooled = top.permute(0, 2, 1).reshape(3, 10)      # features × k
    torch.testing.assert_close(network(x), pooled @ out.weight.T + out.bias)


def test_moments_are_row_means_of_powers():
    network = ExchangeableNetwork((4, 1), (2,), [], ('moments', 1, 2), [('matmul',)])
    with torch.no_grad():
        network.out.weight.copy_(torch.eye(2))
        network.out.bias.zero_()
    x = torch.tensor([[[1.0], [2.0], [0.0], [-3.0]]])
    torch.testing.assert_close(network(x), torch.tensor([[0.0, 3.5]]))


def test_layer_lists_from_json_are_accepted():
    spec = json.loads(json.dumps({'phi': [('conv', 2, 3)], 'g': ('top_k', 1),
                                  'h': [('fc', 4), ('softmax',)]}))
    network = ExchangeableNetwork([5, 6], [2], spec['phi'], spec['g'], spec['h'])
    assert network.spec() == {'input_shape': [5, 6], 'output_shape': [2],
                              'phi_net': [['conv', 2, 3]], 'g': ['top_k', 1],
                              'h_net': [['fc', 4], ['softmax']]}


@pytest.mark.parametrize('kwargs, words', [
    ({'phi_net': [('conv', 5)]}, ["phi_net[0] = ('conv', 5)", 'conv takes 2 positive integers']),
    ({'phi_net': [('fully', 8)]}, ["unknown layer 'fully'"]),
    ({'phi_net': [('fcc', 8)]}, ["did you mean 'fc'"]),
    ({'phi_net': ('fc', 8)}, ["for one layer write [('fc', 8)]"]),
    ({'phi_net': [('conv', 9, 2)]}, ['width 9 is more than the 6 positions']),
    ({'phi_net': [('softmax',)]}, ['softmax may only end h_net']),
    ({'g': ('mean',)}, ["unknown 'mean'", "('top_k', k)"]),
    ({'g': ('top_k', 6)}, ['k=6 is more than the 5 rows']),
    ({'g': ('moments',)}, ['moments takes one or more positive numbers']),
    ({'g': ('max', 2)}, ['max takes no arguments']),
    ({'h_net': [('fc', 8)]}, ["must end with ('matmul',)"]),
    ({'h_net': [('matmul',), ('fc', 2), ('softmax',)]}, ['matmul may only be the last layer']),
    ({'h_net': [('fc', 0), ('matmul',)]}, ["h_net[0] = ('fc', 0)", 'fc takes 1 positive integer']),
    ({'input_shape': (5,)}, ['input_shape = (5,)', '2 or 3 positive integers']),
    ({'output_shape': (2, 2)}, ['output_shape = (2, 2)']),
])
def test_malformed_layer_lists_are_explained(kwargs, words):
    args = {'input_shape': (5, 6), 'output_shape': (2,), 'phi_net': [('fc', 4)], 'g': ('max',),
            'h_net': [('fc', 4), ('matmul',)], **kwargs}
    with pytest.raises(ValueError) as error:
        ExchangeableNetwork(**args)
    for word in words:
        assert word in str(error.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as error:
        ExchangeableNetwork((5, 6), (2,), [('fc',), ('pool', 2)], ('median',), [('fc', 3)])
    message = str(error.value)
    for word in ('phi_net[0]', 'phi_net[1]', "'median'", 'h_net'):
        assert word in message


def test_core_models_build_from_a_config():
    config = {'phi_net': [['conv', 2, 3]], 'g': ['max'], 'h_net': [['fc', 4], ['softmax']],
              'lr': 0.01, 'input_shape': [5, 6], 'output_shape': [2]}
    model = ExchangeableClassifier(config, device='cpu')
    x = np.random.default_rng(0).normal(size=(8, 5, 6)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    loss, _ = model.train_step(torch.from_numpy(x), torch.from_numpy(y))
    assert loss.dim() == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match=r"must end with \('matmul',\)"):
        ExchangeableRegressor(config, device='cpu')
    with pytest.raises(ValueError, match='set input_shape'):
        ExchangeableRegressor({'phi_net': [], 'g': ['max'], 'h_net': [['matmul']]}, device='cpu')


def test_train_and_test_learn_sigma_of_the_gaussian_toy(tmp_path):
    """defiNETti's Gaussian example, shortened: σ is learned far better than the prior knows it."""
    summary, base = tmp_path / 'summary.txt', tmp_path / 'gaussian'
    rows = train((100, 1), (2,), sims.gaussian, phi_net=[('fc', 16)], g=('moments', 1, 2),
                 h_net=[('fc', 16), ('matmul',)], loss='l2', accuracy=None, num_batches=300,
                 batch_size=50, verbosity=100, sim_threads=1, save_path=str(base),
                 training_summary=str(summary), seed=0, device='cpu', learning_rate=0.01)
    lines = [line.split() for line in summary.read_text().splitlines()]
    assert [int(line[0]) for line in lines] == [100, 200, 300]
    np.testing.assert_allclose(np.array(lines, dtype=float), rows, rtol=1e-6)
    assert rows[-1, 1] < rows[0, 1]
    state = torch.load(str(base) + '.pt', weights_only=True)
    assert state['g'] == ['moments', 1, 2]

    rng = np.random.default_rng(1)
    mu, sigma = rng.beta(5, 10, 400), rng.uniform(6, 10, 400)
    data = [rng.normal(m, s, (100, 1)) for m, s in zip(mu, sigma)]
    predicted = test(data, str(base))
    assert predicted.shape == (400, 2)
    mse_sigma = np.mean((predicted[:, 1] - sigma) ** 2)
    prior = 16 / 12  # the variance of U(6, 10): the mean squared error of guessing its mean
    assert mse_sigma < 0.5 * prior, mse_sigma
    with pytest.raises(ValueError, match=r'data\[1\] has shape \(99, 1\)'):
        test([data[0], data[1][:99]], str(base))


def test_train_checks_its_arguments():
    with pytest.raises(ValueError) as error:
        train((100, 1), (2,), sims.gaussian, loss='hinge', accuracy='auc', num_batches=0)
    for word in ('loss must be', 'accuracy must be', 'num_batches'):
        assert word in str(error.value)
    with pytest.raises(ValueError, match="needs an h_net ending in \\('softmax',\\)"):
        train((100, 1), (2,), sims.gaussian, h_net=[('matmul',)])


def test_custom_network_and_loss_callables(tmp_path):
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    seen = {}

    def loss(y_pred, y_true):
        seen['shapes'] = (tuple(y_pred.shape), tuple(y_true.shape))
        return ((y_pred - y_true) ** 2).mean()

    rows = train((4, 3), (1,), sims.small, network_function=network, loss=loss,
                 accuracy=lambda y_pred, y_true: (y_pred - y_true).abs().mean(),
                 num_batches=150, batch_size=16, verbosity=50, sim_threads=1,
                 save_path=str(tmp_path / 'custom'), seed=0, device='cpu', learning_rate=0.05)
    assert seen['shapes'] == ((16, 1), (16, 1))
    assert rows.shape == (3, 3) and rows[2, 2] < rows[0, 2]
    x = np.random.default_rng(0).normal(size=(5, 4, 3))
    # the file holds weights only: a fresh module of the same shape takes them
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    np.testing.assert_allclose(test(x, str(tmp_path / 'custom'), network_function=fresh)[:, 0],
                               x.sum(axis=(1, 2)), atol=0.5)
    with pytest.raises(ValueError, match='network_function=network'):
        test(x, str(tmp_path / 'custom'))


def test_cli_searches_phi_g_h_with_a_simulator_in_def_py(tmp_path):
    """A def.py whose generators simulate (its simulator defined in the def.py itself)."""
    (tmp_path / 'data').mkdir()
    np.save(tmp_path / 'data' / 'observed.npy', np.ones((3, 6, 2), np.float32))
    (tmp_path / 'def.py').write_text(textwrap.dedent('''
        import random
        import numpy as np
        from batch_generator import MatrixBatchGenerator, SimulationBatchGenerator
        from models.exchangeable import ExchangeableClassifier

        def simulate():
            """Class 1: rows drawn around 1 instead of 0."""
            label = np.random.randint(2)
            return np.random.normal(label, 1.0, (6, 2)), np.eye(2)[label]

        def generator(batch_size, processes):
            return SimulationBatchGenerator(simulate, (6, 2), (2,), batch_size,
                                            batches_per_epoch=20, processes=processes, seed=0)

        def get_train_generator(data_dir, batch_size):
            train = generator(batch_size, 1)  # a process that loads this def.py by its path
            return train, train.validation_generator(64)

        def get_test_generator(data_dir):
            return generator(32, 0).test_generator(128)  # in this process

        def get_pred_generator(path):
            return MatrixBatchGenerator(np.load(path))

        def get_config():
            return {'phi_net': random.choice([[('fc', 8)], [('conv', 2, 4)]]),
                    'g': random.choice([('max',), ('moments', 1, 2)]),
                    'h_net': [('fc', 8), ('softmax',)], 'lr': 0.01}

        class Model(ExchangeableClassifier):
            input_shape, output_shape = (6, 2), (2,)
    '''))
    done = subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), '-f', 'def.py',
                           '-d', 'data', '-r', 'results', '-y', '-e', '-p', 'observed.npy',
                           '-ep', '2', '--eta', '3', '-bs', '16', '--seed', '0', '-c',
                           '--threads', '1'], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert done.returncode == 0, done.stderr
    history = (tmp_path / 'results' / 'trials' / 't0000' / 'history.csv').read_text()
    assert len(history.splitlines()) == 3  # two epochs
    config = json.loads((tmp_path / 'results' / 'best.json').read_text())['config']
    assert {'phi_net', 'g', 'h_net'} <= set(config)
    result = json.loads((tmp_path / 'results' / 'test_result.json').read_text())
    assert result['accuracy'] > 0.75, result
    predicted = np.load(tmp_path / 'results' / 'predictions' / 'observed.npy.npy')
    assert predicted.shape == (3, 2) and np.all(predicted[:, 1] > 0.5)


def test_cli_stops_at_once_on_a_broken_simulator(tmp_path):
    (tmp_path / 'data').mkdir()
    (tmp_path / 'def.py').write_text(textwrap.dedent('''
        import numpy as np
        from batch_generator import SimulationBatchGenerator
        from models.exchangeable import ExchangeableClassifier

        def simulate():
            return np.zeros((5, 3)), np.zeros(2)

        def get_train_generator(data_dir, batch_size):
            train = SimulationBatchGenerator(simulate, (6, 2), (2,), batch_size, processes=1)
            return train, train.validation_generator(10)

        def get_config():
            return {'phi_net': [], 'g': ['max'], 'h_net': [['softmax']]}

        class Model(ExchangeableClassifier):
            input_shape, output_shape = (6, 2), (2,)
    '''))
    done = subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), '-f', 'def.py',
                           '-d', 'data', '-r', 'results', '-y', '-ep', '3', '-c'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and 'Traceback' not in done.stderr
    assert 'simulator user_def.simulate returned data of shape (5, 3)' in done.stderr
    assert 'trial t0000 failed' not in done.stderr  # the search stopped: no trial blamed


def _hotspot_module():
    import importlib.util
    path = os.path.join(REPO, 'examples', 'recombination_hotspot', 'simulate.py')
    spec = importlib.util.spec_from_file_location('hotspot_simulate', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hotspot_encoding_by_hand():
    hotspot = _hotspot_module()
    middle = hotspot.LENGTH / 2
    positions = middle + np.arange(-15, 15) * 100.0 + 50     # 15 SNPs on each side
    genotypes = np.zeros((30, 6), np.int8)
    genotypes[:, :2] = 1                                      # allele 1 in 2 of 6: minor
    genotypes[14, :] = [1, 1, 1, 1, 0, 0]                     # allele 1 in 4 of 6: flipped
    x = hotspot.encode(genotypes, positions)
    assert x.shape == (6, 24, 2) and x.dtype == np.float32
    window = slice(15 - 12, 15 + 12)                          # 12 SNPs before the centre
    expected = genotypes[window].T.astype(np.float32)
    expected[:, 14 - 3] = 1 - expected[:, 14 - 3]
    np.testing.assert_array_equal(x[:, :, 0], expected)
    scale = 4 * hotspot.POPULATION_SIZE * hotspot.MUTATION_RATE
    np.testing.assert_allclose(x[:, :-1, 1], 100 * scale)
    assert np.all(x[:, -1, 1] == 0)
    assert hotspot.encode(genotypes[:20], positions[:20]) is None   # 5 SNPs after the centre


def test_hotspot_simulator_is_seeded_by_numpy():
    hotspot = _hotspot_module()
    np.random.seed(4)
    x, label = hotspot.simulate_hotspot()
    np.random.seed(4)
    again, _ = hotspot.simulate_hotspot()
    assert x.shape == hotspot.INPUT_SHAPE and label.shape == hotspot.OUTPUT_SHAPE
    np.testing.assert_array_equal(x, again)
    assert label.sum() == 1 and set(np.unique(x[:, :, 0])) <= {0.0, 1.0}
    assert np.all(x[:, :, 0].mean(axis=0) <= 0.5)             # the minor allele is 1
    assert np.all(x[:, :-1, 1] > 0) and np.all(x[:, :, 1] == x[:1, :, 1])
