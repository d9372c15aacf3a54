"""--ddp on the CPU: gloo process groups of 2 and 3 processes on this machine.

References are one process running the same model on the same data: training with the same
global batch must give the same weights, losses and metrics; evaluation and prediction must
return every sample exactly once, in order, however the batches divide among the ranks.
"""
import os
import re

import numpy as np
import pytest
import torch
from torch import nn, optim

from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator
from constraints import MaxNormConstraint
from dlutil import rng
from dlutil.training import ddp

N_ROWS = 29  # divides evenly neither by 2, 3 nor the batch sizes


class Net(RegressionModel):
    def init_model(self):
        network = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))
        super().init_model(network, optim.Adam(network.parameters(), lr=0.05),
                           constraints=[MaxNormConstraint(0.8, '0')])


class Identity(RegressionModel):
    """Predicts its input's first column, the row's index: shows which rows came back."""

    def init_model(self):
        network = nn.Linear(3, 1)
        with torch.no_grad():
            network.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
            network.bias.zero_()
        super().init_model(network, optim.SGD(network.parameters(), lr=0.0))


def data(n=N_ROWS):
    generator = np.random.default_rng(0)
    X = generator.normal(size=(n, 3)).astype(np.float32)
    Y = (X @ np.array([1.0, -2.0, 0.5]) + 0.1 * generator.normal(size=n)).astype(np.float32)
    return X, Y


def train(batch_size, epochs=2):
    """Train ``Net`` for ``epochs`` epochs on shuffled data; returns weights, rows, eval."""
    rng.seed_everything(3)
    model = Net({}, device='cpu')
    if torch.distributed.is_initialized():
        ddp.DataParallel(model)
    X, Y = data()
    generator = MatrixBatchGenerator(X, Y, batch_size, shuffle=True)
    generator.reseed(7)
    rows = [model.run_epoch(generator, MatrixBatchGenerator(X, Y), batch_size)
            for _ in range(epochs)]
    for row in rows:
        row.pop('train_seconds')
    weights = {k: v.numpy().copy() for k, v in model.network.state_dict().items()}
    return weights, rows, model.optimizer.state_dict()['state'][0]['step'].item()


def _train_rank(rank, world, device, batch_size):
    torch.set_num_threads(1)
    return train(batch_size)


def test_two_processes_train_as_one_with_the_same_global_batch():
    batch_size = 7  # 29 rows: the last batch of 1 row leaves rank 1 idle in that step
    weights, rows, steps = ddp.launch(2, _train_rank, (batch_size,))
    ref_weights, ref_rows, ref_steps = train(batch_size)
    assert steps == ref_steps == 2 * -(-N_ROWS // batch_size)
    for key in ref_weights:
        np.testing.assert_allclose(weights[key], ref_weights[key], rtol=1e-5, atol=1e-6)
    assert rows[0].keys() == ref_rows[0].keys()
    for row, ref in zip(rows, ref_rows):
        for key in ref:
            assert row[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key
    assert rows[-1]['train_loss'] < rows[0]['train_loss']  # it did learn


def _eval_rank(rank, world, device, batch_size):
    torch.set_num_threads(1)
    model = Identity({}, device='cpu')
    ddp.DataParallel(model)
    X, Y = data()
    X[:, 0] = np.arange(N_ROWS)
    values = model.evaluate(MatrixBatchGenerator(X, Y, batch_size), batch_size)
    return values, model.predict(MatrixBatchGenerator(X, None, batch_size), batch_size), \
        model.predict(MatrixBatchGenerator({'a': X}['a']), batch_size)


@pytest.mark.parametrize('world', [2, 3])
def test_evaluation_and_prediction_return_every_sample_once_in_order(world):
    for batch_size in (4,):  # 8 batches, the last of 1 row: 4 + 4 or 3 + 3 + 2 per rank
        values, predicted, unbatched = ddp.launch(world, _eval_rank, (batch_size,))
        expected = np.arange(N_ROWS, dtype=np.float32)
        np.testing.assert_array_equal(np.ravel(predicted), expected)
        np.testing.assert_array_equal(np.ravel(unbatched), expected)
        model = Identity({}, device='cpu')
        X, Y = data()
        X[:, 0] = np.arange(N_ROWS)
        reference = model.evaluate(MatrixBatchGenerator(X, Y, batch_size), batch_size)
        assert values == pytest.approx(reference, rel=1e-6)


def _fail_rank(rank, world, device):
    if rank == 1:
        raise ValueError('rank one is broken')
    torch.distributed.barrier()


def test_a_failing_rank_stops_the_group_with_its_error():
    with pytest.raises(RuntimeError, match='rank 1 failed: ValueError: rank one is broken'):
        ddp.launch(2, _fail_rank)


def test_shares_cover_a_batch_once():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            spans = [ddp.share(n, r, world) for r in range(world)]
            assert [i for a, b in spans for i in range(a, b)] == list(range(n))


SEARCH_DEF = '''
import numpy as np
from torch import nn, optim

from base_model import RegressionModel
from batch_generator import MatrixBatchGenerator


def get_train_generator(data_dir, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(45, 3)).astype(np.float32)
    Y = (X @ np.array([1.0, -2.0, 0.5])).astype(np.float32)
    return MatrixBatchGenerator.get_train_val_generator(X, Y, 0.2, batch_size)


class Model(RegressionModel):
    def init_model(self):
        network = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        super().init_model(network, optim.Adam(network.parameters(), lr=self.config['lr']))


def get_config():
    return {'lr': float(np.random.choice([0.01, 0.03, 0.1]))}
'''


def test_a_search_with_ddp_2_matches_one_process(cli, tmp_path):
    from conftest import write_def
    from dlutil.search import results
    def_path = write_def(tmp_path, SEARCH_DEF)
    runs, lines = {}, {}
    for n in (1, 2):
        code, err = cli('-f', def_path, '-d', tmp_path, '-r', tmp_path / f'ddp{n}', '-y', '-c',
                        '-ep', '3', '--keep-checkpoints', 'all', '--trials', '2', '-bs', '8',
                        '--seed', '4', '--threads', '1', '--ddp', n)
        assert code == 0, err
        runs[n] = results.read_csv(tmp_path / f'ddp{n}' / 'search.csv')
        assert (tmp_path / f'ddp{n}' / 'best.json').exists()
        lines[n] = [line.split(': ')[0] for line in err.splitlines()
                    if re.match(r'trial t\d+ epoch \d+/\d+: train_loss', line)]
    # rank 0's epoch lines reach the terminal, once each, as one process's do
    assert lines[2] == lines[1] and len(lines[1]) == sum(
        len(results.read_csv(tmp_path / 'ddp1' / 'trials' / trial / 'history.csv'))
        for trial in os.listdir(tmp_path / 'ddp1' / 'trials'))
    assert [{k: v for k, v in r.items() if k != 'reward'} for r in runs[2]] == \
        [{k: v for k, v in r.items() if k != 'reward'} for r in runs[1]]
    assert [r['reward'] for r in runs[2]] == pytest.approx([r['reward'] for r in runs[1]],
                                                           rel=1e-5)
    # rank 0 alone wrote checkpoints, one per trained epoch, readable as usual
    last = results.load_checkpoint(tmp_path / 'ddp2' / 'trials' / 't0000' / 'last.pt')
    assert last['epoch'] == len(results.read_csv(tmp_path / 'ddp2' / 'trials' / 't0000' /
                                                 'history.csv'))
