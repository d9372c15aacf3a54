"""deepLAI's SegNet, the window network and the local-ancestry model."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlutil.genotypes.h5 import IGNORE, MISSING
from models.local_ancestry import (LocalAncestryModel, ancestry_metrics, mode_filter,
                                   one_hot_alleles)
from models.segnet import SegNet, main as table_main, parameter_table, segnet_parameter_count
from models.window_lai import WindowLAI

torch.set_num_threads(1)

# rows of deepLAI's model/hparam_to_nparam.tsv: width, n_filter, maxpool, depth, n_par (8 classes)
DEEPLAI_ROWS = [(2, 4, 2, 2, 840), (4, 4, 2, 2, 1592), (2, 4, 2, 3, 3336),
                (16, 4, 2, 3, 25624), (4, 8, 2, 3, 25704), (6, 6, 2, 4, 87536),
                (16, 16, 2, 5, 6634056), (48, 64, 2, 8, 20400707848)]


@pytest.mark.parametrize('width, n_filters, pool, blocks, n_par', DEEPLAI_ROWS)
def test_parameter_count_matches_deeplai_table(width, n_filters, pool, blocks, n_par):
    assert segnet_parameter_count(8, width, n_filters, pool, blocks) == n_par
    if n_par < 10 ** 7:  # build the small ones: the closed form is the module's count
        net = SegNet(64, 8, width=width, n_filters=n_filters, pool_size=pool, n_blocks=blocks)
        assert sum(p.numel() for p in net.parameters()) == n_par


def test_parameter_count_with_batch_normalization():
    net = SegNet(50, 3, width=4, n_filters=4, pool_size=2, n_blocks=3, batch_normalization=True)
    assert sum(p.numel() for p in net.parameters()) == segnet_parameter_count(
        3, 4, 4, 2, 3, batch_normalization=True)


@pytest.mark.parametrize('n_variants, pool, blocks', [(1, 4, 2), (37, 2, 3), (1025, 4, 5),
                                                      (64, 4, 3), (333, 3, 2)])
def test_segnet_shapes_any_number_of_variants(n_variants, pool, blocks):
    net = SegNet(n_variants, 4, width=5, n_filters=2, pool_size=pool, n_blocks=blocks).eval()
    x = torch.randint(0, 2, (3, n_variants), dtype=torch.uint8)
    assert net(x).shape == (3, 4, n_variants)


def test_segnet_defaults_are_deeplai():
    net = SegNet(100, 5)
    assert net.down[0][0].kernel_size == (16,) and net.down[0][0].out_channels == 16
    assert net.pool_size == 4 and net.n_blocks == 5 and net.l2_lambda == 1e-30
    assert net.input_dropout.p == 0.01 and net.dropout.p == 0.01
    assert isinstance(net.down[0][1], torch.nn.Identity)  # no batch normalization


def test_one_hot_alleles_and_missing():
    x = torch.tensor([[0, 1, MISSING]], dtype=torch.uint8)
    expected = torch.tensor([[[1., 0., 0.], [0., 1., 0.]]])
    assert torch.equal(one_hot_alleles(x), expected)
    net = SegNet(3, 2, width=3, n_filters=2, pool_size=2, n_blocks=1).eval()
    assert torch.equal(net(x), net(expected))
    with pytest.raises(ValueError, match=r'input has 3 variants but the network was built for 4'):
        SegNet(4, 2, width=3, n_filters=2, pool_size=2, n_blocks=1)(x)


@pytest.mark.parametrize('make', [
    lambda: SegNet(70, 3, width=4, n_filters=3, pool_size=2, n_blocks=2),
    lambda: SegNet(70, 3, width=4, n_filters=3, pool_size=2, n_blocks=2, input_pool=4),
    lambda: WindowLAI(70, 3, window=16, hidden=4, smoother_width=3)])
def test_batch_size_does_not_change_outputs(make):
    torch.manual_seed(0)
    net = make().eval()
    x = torch.randint(0, 2, (6, 70), dtype=torch.uint8)
    together = net(x)
    apart = torch.cat([net(x[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-5)


def test_window_network_is_position_specific():
    net = WindowLAI(50, 2, window=10, hidden=0, smoother_width=3)
    # one linear classifier per window: 5 windows x (2 alleles x 10 variants) x 2 classes
    assert net.weight.shape == (5, 20, 2)
    x = torch.zeros(1, 50, dtype=torch.uint8)
    net.eval()
    base = net.window_scores(x)
    with torch.no_grad():
        net.weight[2].add_(1.0)  # change the third window's weights only
    changed = (net.window_scores(x) - base).abs().sum(dim=1)[0]
    assert changed[2] > 0 and changed[[0, 1, 3, 4]].abs().max() == 0
    assert net(x).shape == (1, 2, 50)


def test_ancestry_metrics_against_loops():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, (4, 30))
    y[0, :5] = IGNORE
    calls = np.where(rng.random((4, 30)) < 0.7, y, rng.integers(0, 3, (4, 30)))
    values = ancestry_metrics(y, calls, ['a', 'b', 'c'])
    keep = y != IGNORE
    assert values['accuracy'] == pytest.approx(np.mean(calls[keep] == y[keep]))
    for i, name in enumerate('abc'):
        tp = np.sum((calls == i) & (y == i))
        assert values[f'precision_{name}'] == pytest.approx(tp / np.sum((calls == i) & keep))
        assert values[f'recall_{name}'] == pytest.approx(tp / np.sum(y == i))
        for j, other in enumerate('abc'):
            assert values[f'confusion_{name}_{other}'] == pytest.approx(
                np.sum((y == i) & (calls == j)) / keep.sum())


def test_mode_filter_against_a_loop():
    rng = np.random.default_rng(1)
    calls = rng.integers(0, 3, (3, 40))
    out = mode_filter(calls, 5, 3)
    for r in range(3):
        for v in range(40):
            window = calls[r, max(0, v - 2):v + 3]
            assert out[r, v] == np.bincount(window, minlength=3).argmax()
    assert mode_filter(calls, 0, 3) is calls
    with pytest.raises(ValueError, match='odd'):
        mode_filter(calls, 4, 3)


class _Toy(LocalAncestryModel):
    ancestries = ['x', 'y']
    positions = np.arange(1, 41) * 100


def _toy_data(n=32, seed=0):
    # ancestry 0 carries allele 0 and ancestry 1 allele 1 (90 %); one switch per haplotype
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 40), np.int16)
    for row in range(n):
        y[row, rng.integers(5, 35):] = 1
    x = (y ^ (rng.random((n, 40)) < 0.1)).astype(np.uint8)
    return x, y


@pytest.mark.parametrize('network', ['window', 'segnet'])
def test_model_trains_and_reloads_from_its_checkpoint(network):
    torch.manual_seed(0)
    config = ({'network': 'window', 'window': 8, 'smoother_width': 3, 'learning_rate': 0.02}
              if network == 'window' else
              {'network': 'segnet', 'width': 3, 'n_filters': 4, 'pool_size': 2, 'n_blocks': 2,
               'learning_rate': 0.01})
    model = _Toy(config, device='cpu')
    assert model.early_stopping_patience == 10  # deepLAI's patience
    assert model.network.positions.tolist() == _Toy.positions.tolist()
    from batch_generator import MatrixBatchGenerator
    x, y = _toy_data()
    train = MatrixBatchGenerator(x, y, batch_size=8, shuffle=True)
    val = MatrixBatchGenerator(*_toy_data(16, seed=1))
    first = model.run_epoch(train, val)
    for _ in range(25):
        last = model.run_epoch(train, val)
    assert last['val_loss'] < first['val_loss']
    assert last['val_accuracy'] > 0.8
    assert {'val_precision_x', 'val_recall_y', 'val_confusion_x_y'} <= set(last)
    # a process that has not read the panel rebuilds the network from the checkpoint
    state = model.state_dict()
    fresh = LocalAncestryModel(config, device='cpu')
    fresh.load_state_dict(state, optimizer=False)
    assert fresh.model_positions.tolist() == _Toy.positions.tolist()
    out, again = model.predict(val), fresh.predict(val)
    np.testing.assert_array_equal(out['calls'], again['calls'])
    assert out['probabilities'].shape == (16, 40, 2)
    np.testing.assert_allclose(out['probabilities'].sum(axis=2), 1, rtol=1e-5)


def test_model_rejects_unknown_config_keys_and_bad_labels():
    with pytest.raises(ValueError, match=r"unknown configuration keys \['widht'\]"):
        _Toy({'network': 'segnet', 'widht': 3}, device='cpu')
    model = _Toy({'window': 8, 'smoother_width': 3}, device='cpu')
    with pytest.raises(ValueError, match='expected one label per variant'):
        model.loss(torch.zeros(2, dtype=torch.long), torch.zeros(2, 2, 40))


def test_parameter_table_command(tmp_path, capsys):
    assert table_main(['--width', '2,4', '--n-filters', '4', '--n-blocks', '2']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['width\tn_filter\tmaxpool\tdepth\tn_par', '2\t4\t2\t2\t840',
                     '4\t4\t2\t2\t1592']
    rows = parameter_table()
    assert len(rows) == 8 * 7 * 7 and rows[0] == (2, 4, 2, 2, 840)
    assert rows[-1] == (48, 64, 2, 8, 20400707848)


@pytest.mark.parametrize('hidden', [0, 8])
def test_window_training_loss_is_the_per_variant_cross_entropy(hidden):
    # training computes the loss per window (label counts × log-probabilities): the same value
    # as the per-variant cross-entropy, with class weights, ignored labels and a padded window
    torch.manual_seed(0)
    net = WindowLAI(70, 3, window=16, hidden=hidden, smoother_width=3, input_dropout=0.0).train()
    x = torch.randint(0, 3, (5, 70), dtype=torch.uint8)
    x[x == 2] = 255
    y = torch.randint(0, 3, (5, 70))
    y[0, :7] = IGNORE
    weight = torch.tensor([0.5, 1.0, 2.0])
    logits = net(x)
    expected = (F.cross_entropy(logits, y, weight=weight, ignore_index=IGNORE)
                + net.regularization(y))
    torch.testing.assert_close(net.training_loss(y, weight), expected)


@pytest.mark.parametrize('encoding,hidden', [('one_hot', 0), ('one_hot', 6),
                                             ('likelihood', 0)])
def test_window_network_starts_at_naive_bayes(encoding, hidden):
    # each window's classifier starts as the window's naive-Bayes score
    from dlutil.genotypes.encoding import log_likelihood_table
    from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
    rng = np.random.default_rng(0)
    panel = rng.integers(0, 2, (60, 50)).astype(np.uint8)
    nb = WindowedNaiveBayes(3).update(panel, np.repeat([0, 1, 2], 20))
    net = WindowLAI(50, 3, window=10, hidden=hidden, smoother_width=3, encoding=encoding).eval()
    net.encoder.set_frequencies(nb.alt, nb.total, min_minor_count=0)
    assert net.init_naive_bayes(log_likelihood_table(nb.alt, nb.total, min_minor_count=0))
    query = rng.integers(0, 2, (4, 50)).astype(np.uint8)
    scores = net.window_scores(torch.as_tensor(query)).detach().numpy()
    log_ref, log_alt = nb.log_frequencies()
    ll = np.where(query[:, None, :] == 1, log_alt[None], log_ref[None])
    ll = ll - ll.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(scores, ll.reshape(4, 3, 5, 10).sum(axis=3), atol=1e-4)
    assert not WindowLAI(50, 3, window=10, hidden=4).init_naive_bayes(
        log_likelihood_table(nb.alt, nb.total))  # too few hidden units: left as it was


def test_window_label_counts_refuses_labels_outside_the_classes():
    net = WindowLAI(20, 3, window=8, smoother_width=3)
    counts = net.window_label_counts(torch.tensor([[0] * 8 + [1] * 8 + [2, IGNORE, 2, 2]]))
    assert counts.tolist() == [[[8, 0, 0], [0, 8, 0], [0, 0, 3]]]  # the padded window: 3 of 4
    for label in (3, -2):
        with pytest.raises(ValueError, match=f'labels must be 0..2 or {IGNORE}.*got {label}'):
            net.window_label_counts(torch.tensor([[0] * 19 + [label]]))
    with pytest.raises(ValueError, match='got -2'):  # the offending label, not IGNORE beside it
        net.window_label_counts(torch.tensor([[IGNORE] + [0] * 18 + [-2]]))
