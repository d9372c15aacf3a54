"""Interpretation: max activations against F.conv1d, kernel motifs, importance scores as pysster
defines them, MEME files that parse, summary.html, the performance report against sklearn, and
``--interpret`` through the CLI."""
import html
import os
import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, \
    roc_auc_score
from torch import nn

from dlutil.interpret import kernel_report as interpret
from base_model import ClassificationModel
from batch_generator import MatrixBatchGenerator
from conftest import CLASSIFIER_DEF, write_def
from dlutil.interpret.motif import Motif, alphabet_symbols, meme_text, write_meme
from dlutil.interpret.classification_report import performance_report

MOTIF = 'ACGTAC'
LENGTH = 50


def onehot(letters, alphabet='ACGT'):
    """Letter indices (n, L) or a string → one-hot, shape=(n, |alphabet|, L), float32."""
    if isinstance(letters, str):
        letters = np.array([[alphabet.index(c) for c in letters]])
    return (letters[:, None, :] == np.arange(len(alphabet))[None, :, None]).astype(np.float32)


@pytest.fixture(scope='module')
def toy():
    """120 random sequences; class 1 (every other row) carries MOTIF at a random position."""
    rng = np.random.default_rng(0)
    n = 120
    letters = rng.integers(0, 4, size=(n, LENGTH))
    y = np.arange(n) % 2
    planted = np.array(['ACGT'.index(c) for c in MOTIF])
    for i in np.flatnonzero(y):
        start = rng.integers(0, LENGTH - len(MOTIF) + 1)
        letters[i, start:start + len(MOTIF)] = planted
    return onehot(letters), y


def motif_weights(n_kernels=2, seed=1):
    """Kernel 0 detects MOTIF (one-hot − 0.25, 4.5 on a perfect match); the others are random."""
    weight = torch.randn(n_kernels, 4, len(MOTIF), generator=torch.Generator().manual_seed(seed))
    weight[0] = torch.from_numpy(onehot(MOTIF)[0]) - 0.25
    bias = torch.zeros(n_kernels)
    bias[1:] = 0.1
    return weight, bias


class Toy(ClassificationModel):
    """conv → ReLU → max over positions → linear, in one of three input layouts."""

    def init_model(self):
        layout = self.config['layout']
        weight, bias = motif_weights()
        if layout == 'conv1d':  # (n, 4, L)
            conv = nn.Conv1d(4, 2, len(MOTIF))
            conv.weight.data.copy_(weight)
            pool = nn.AdaptiveMaxPool1d(1)
        elif layout == 'height1':  # (n, 4, 1, L)
            conv = nn.Conv2d(4, 2, (1, len(MOTIF)))
            conv.weight.data.copy_(weight[:, :, None, :])
            pool = nn.AdaptiveMaxPool2d(1)
        else:  # (n, 1, 4, L)
            conv = nn.Conv2d(1, 2, (4, len(MOTIF)))
            conv.weight.data.copy_(weight[:, None])
            pool = nn.AdaptiveMaxPool2d(1)
        conv.bias.data.copy_(bias)
        head = nn.Linear(2, 2)
        head.weight.data.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        head.bias.data.copy_(torch.tensor([3.0, -3.0]))
        network = nn.Sequential(nn.Dropout(0.1), conv, nn.ReLU(inplace=True), pool, nn.Flatten(),
                                head)
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.1))


def layout_input(X, layout):
    return {'conv1d': X, 'height1': X[:, :, None, :], 'channel1': X[:, None]}[layout]


def reference_max(X):
    """max over positions of relu(conv1d(X)), computed directly, shape=(n, K)."""
    weight, bias = motif_weights()
    return F.relu(F.conv1d(torch.from_numpy(X), weight, bias)).amax(dim=2).numpy()


@pytest.fixture(scope='module')
def acts(toy):
    X, y = toy
    return interpret.get_max_activations(Toy({'layout': 'height1'}, device='cpu'),
                                         MatrixBatchGenerator(X[:, :, None, :], y, 32),
                                         class_names=['random <b>', 'motif & co'])


@pytest.mark.parametrize('layout', ['conv1d', 'height1', 'channel1'])
def test_max_activations_equal_a_direct_conv1d(toy, layout):
    X, y = toy
    model = Toy({'layout': layout}, device='cpu')
    model.network.train()
    out = interpret.get_max_activations(model, MatrixBatchGenerator(layout_input(X, layout), y,
                                                                    17))
    expected = reference_max(X)
    assert out['activations'].shape == (len(X), 2)
    np.testing.assert_allclose(out['activations'], expected, rtol=1e-5, atol=1e-5)
    assert out['activations'][y == 1, 0].min() == pytest.approx(4.5)  # every planted motif
    windows = np.stack([X[i, :, p:p + len(MOTIF)] for i, p in enumerate(out['positions'][:, 0])])
    np.testing.assert_allclose(np.einsum('nak,ak->n', windows, motif_weights()[0][0].numpy()),
                               expected[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out['labels'], np.eye(2)[y])
    np.testing.assert_array_equal(out['sequences'], X)
    assert out['layer'] == '1' and out['kernel_length'] == len(MOTIF)
    assert out['input_shape'] == layout_input(X, layout).shape[1:]
    assert model.network.training  # the mode is put back


def test_batch_size_does_not_change_max_activations(toy):
    X, y = toy
    model = Toy({'layout': 'conv1d'}, device='cpu')
    one = interpret.get_max_activations(model, MatrixBatchGenerator(X, y, 7))
    two = interpret.get_max_activations(model, MatrixBatchGenerator(X, y), batch_size=64)
    np.testing.assert_allclose(one['activations'], two['activations'], rtol=1e-6)  # last bits
    for key in ('positions', 'labels', 'sequences'):
        np.testing.assert_array_equal(one[key], two[key])


def test_raw_convolution_output_without_an_activation_module(toy):
    X, y = toy
    weight, bias = motif_weights()
    conv = nn.Conv1d(4, 2, len(MOTIF))
    conv.weight.data.copy_(weight)
    conv.bias.data.copy_(bias)
    network = nn.Sequential(conv, nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(2, 2))
    out = interpret.get_max_activations(network, MatrixBatchGenerator(X, y, 50))
    expected = F.conv1d(torch.from_numpy(X), weight, bias).amax(dim=2).numpy()
    np.testing.assert_allclose(out['activations'], expected, rtol=1e-5, atol=1e-5)
    assert out['activation'] is None


class Functional(nn.Module):
    """pysster's layout: input dropout, zero padding and ``torch.relu`` in forward."""

    def __init__(self, length):
        super().__init__()
        self.length = length
        self.dropout, self.conv = nn.Dropout(0.1), nn.Conv1d(4, 2, len(MOTIF))
        self.conv.weight.data.copy_(motif_weights()[0])
        self.conv.bias.data.copy_(motif_weights()[1])
        self.pool = nn.AdaptiveMaxPool1d(1)

    def forward(self, x):
        x = F.pad(self.dropout(x), (0, self.length - x.shape[2]))
        return self.pool(torch.relu(self.conv(x))).flatten(1)


def test_functional_relu_and_padding_in_forward(toy):
    X, y = toy
    out = interpret.get_max_activations(Functional(LENGTH + 10), MatrixBatchGenerator(X, y, 50))
    padded = np.pad(X, ((0, 0), (0, 0), (0, 10)))
    np.testing.assert_allclose(out['activations'], reference_max(padded), rtol=1e-5, atol=1e-5)
    assert isinstance(out['activation'], nn.ReLU)
    assert out['sequences'].shape == (len(X), 4, LENGTH + 10)  # what the convolution sees
    assert out['input_shape'] == (4, LENGTH)


def test_dilated_strided_padded_convolution_maps_back_to_windows(toy):
    X, y = toy
    conv = nn.Conv1d(4, 3, 3, dilation=2, padding=2, stride=2)
    network = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten())
    out = interpret.get_max_activations(network, MatrixBatchGenerator(X, y, 40))
    with torch.no_grad():
        expected = F.relu(conv(torch.from_numpy(X))).amax(dim=2).numpy()
    np.testing.assert_allclose(out['activations'], expected, rtol=1e-5, atol=1e-6)
    assert out['kernel_length'] == 5  # two gaps between three taps
    padded = np.pad(X, ((0, 0), (0, 0), (2, 2)))
    taps = conv.weight.detach().numpy()
    for k in range(3):
        starts = out['starts'][:, k] + 2
        windows = np.stack([padded[i, :, s:s + 5:2] for i, s in enumerate(starts)])
        scores = np.einsum('nak,ak->n', windows, taps[k]) + conv.bias[k].item()
        np.testing.assert_allclose(np.maximum(scores, 0), expected[:, k], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out['positions'], (out['starts'] + 2) // 2)


def class_mean_reference(values, y):
    return np.array([values[y == c].astype(np.float64).mean(axis=0) for c in np.unique(y)])


def test_importance_is_max_minus_min_of_class_means(toy, acts):
    X, y = toy
    means = class_mean_reference(reference_max(X), y)
    expected = means.max(axis=0) - means.min(axis=0)
    np.testing.assert_allclose(interpret.importance_scores(acts), expected, atol=1e-5)
    assert expected[0] > expected[1]


def test_kernel_motif_recovers_the_planted_motif(toy, acts, tmp_path):
    X, y = toy
    found, score = interpret.visualize_kernel(acts, 'ACGT', 0, tmp_path)
    assert found.consensus == MOTIF
    means = class_mean_reference(reference_max(X), y)
    assert score == pytest.approx(means[1, 0] - means[0, 0], rel=1e-5)
    # the seed's rule: the top class's sequences reaching the largest class mean (all of class 1)
    rows, top, threshold = interpret.kernel_sites(acts, 0)
    assert top == 1 and threshold == pytest.approx(4.5)
    assert sorted(rows) == list(np.flatnonzero(y == 1)) and found.n_sites == len(rows)
    counts = sum(X[i, :, p:p + len(MOTIF)] for i, p in zip(rows, acts['positions'][rows, 0])).T
    expected = 0.999 * counts / counts.sum(axis=1, keepdims=True) + 0.001 / 4
    np.testing.assert_allclose(found.pwm, expected)
    for name in ('motif_kernel_0.png', 'position_kernel_0.png', 'activations_kernel_0.png'):
        assert_png(tmp_path / name)


def test_dead_kernel_gives_a_uniform_motif(toy, tmp_path):
    X, y = toy
    model = Toy({'layout': 'conv1d'}, device='cpu')
    model.network[1].bias.data[1] = -100.0  # kernel 1 never fires after the ReLU
    out = interpret.get_max_activations(model, MatrixBatchGenerator(X, y, 64))
    dead, score = interpret.visualize_kernel(out, 'ACGT', 1, tmp_path)
    assert score == 0 and dead.n_sites == 0
    np.testing.assert_allclose(dead.pwm, 0.25)
    assert_png(tmp_path / 'activations_kernel_1.png')


def assert_png(path):
    import matplotlib.image
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', path
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def parse_meme(text):
    """A minimal MEME version 4 parser: alphabet, background and {name: (nsites, matrix)}."""
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == 'MEME version 4'
    alphabet = next(line.split('=', 1)[1].strip() for line in lines
                    if line.startswith('ALPHABET='))
    start = lines.index('Background letter frequencies') + 1
    fields = lines[start].split()
    background = dict(zip(fields[::2], map(float, fields[1::2])))
    motifs, i = {}, 0
    while i < len(lines):
        if lines[i].startswith('MOTIF '):
            name = lines[i].split()[1]
            header = re.match(r'letter-probability matrix: alength= (\d+) w= (\d+) nsites= (\d+)',
                              lines[i + 1])
            assert header, lines[i + 1]
            alength, width, nsites = map(int, header.groups())
            rows = [list(map(float, lines[i + 2 + r].split())) for r in range(width)]
            assert all(len(row) == alength for row in rows)
            motifs[name] = (nsites, np.array(rows))
            i += 2 + width
        else:
            i += 1
    return alphabet, background, motifs


def test_all_kernels_write_sorted_meme_and_summary(toy, acts, tmp_path):
    found = interpret.visualize_all_kernels(acts, 'ACGT', tmp_path,
                                            links=[('perf <x>', 'performance.html')])
    assert [m.name for m in found] == ['kernel_0', 'kernel_1']  # kernel order, as the seed
    scores = interpret.importance_scores(acts)
    order = list(np.argsort(-scores, kind='stable'))
    for k in range(2):
        for kind in ('motif', 'position', 'activations'):
            assert_png(tmp_path / f'{kind}_kernel_{k}.png')
    alphabet, background, motifs = parse_meme((tmp_path / 'motifs.meme').read_text())
    assert alphabet == 'ACGT' and list(background) == list('ACGT')
    assert sum(background.values()) == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(list(background.values()),
                               toy[0].mean(axis=(0, 2)), atol=1e-6)  # the data's frequencies
    assert list(motifs) == [f'kernel_{k}' for k in order]
    for k, (nsites, matrix) in enumerate(motifs[f'kernel_{k}'] for k in range(2)):
        np.testing.assert_allclose(matrix.sum(axis=1), 1, atol=1e-5)
        assert matrix.min() >= 0.001 / 4 - 1e-6  # the pseudocount's floor
        np.testing.assert_allclose(matrix, found[k].pwm, atol=1e-6)
        assert nsites == found[k].n_sites
    assert ''.join('ACGT'[i] for i in motifs['kernel_0'][1].argmax(axis=1)) == MOTIF
    page = (tmp_path / 'summary.html').read_text()
    headings = re.findall(r'<h2>#\d+: kernel (\d+)</h2>', page)
    assert [int(k) for k in headings] == order
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / html.unescape(src)).is_file() and not os.path.isabs(src)
    assert html.escape('random <b>, motif & co') in page and '<b>' not in page
    assert 'perf &lt;x&gt;' in page and 'href="motifs.meme"' in page


def test_motif_pwm_and_meme_text_for_rna_protein_and_other_alphabets():
    made = Motif.from_sequences(['ACGU', 'ACGA', 'ACNA'], 'ACGU', name='m')
    assert made.consensus == 'ACGA' and made.n_sites == 3
    np.testing.assert_allclose(made.pwm[2], [0.001 / 4, 0.001 / 4, 0.999 + 0.001 / 4, 0.001 / 4])
    rna = meme_text([made])
    assert 'ALPHABET= ACGU' in rna and 'strands: +\n' in rna and 'strands: + -' not in rna
    protein = Motif.from_sequences(['WACD'], 'WYACDEFGHIKLMNPQRSTV')  # not in MEME's order
    alphabet, background, motifs = parse_meme(meme_text([protein]))
    assert alphabet == 'ACDEFGHIKLMNPQRSTVWY' and 'strands' not in meme_text([protein])
    matrix = next(iter(motifs.values()))[1]
    assert ''.join(alphabet[i] for i in matrix.argmax(axis=1)) == 'WACD'
    custom = meme_text([Motif.from_sequences(['HIS'], 'HIMS')])
    assert 'ALPHABET "custom"\nH\nI\nM\nS\nEND ALPHABET' in custom
    with pytest.raises(ValueError, match='MEME letters are single characters'):
        meme_text([Motif.from_sequences([['AH', 'CI']], ['AH', 'AI', 'CH', 'CI'])])


def test_product_alphabet_marginals(tmp_path):
    symbols = alphabet_symbols(('ACGU', 'HIMS'), n_channels=16)
    assert symbols[:5] == ('AH', 'AI', 'AM', 'AS', 'CH')
    product = Motif.from_sequences(['AHCIGM', 'AHCSGM'], symbols)
    sequence, structure = product.marginals()
    assert sequence.consensus == 'ACG' and structure.consensus[0] == 'H'
    np.testing.assert_allclose(sequence.pwm.sum(axis=1), 1)
    assert_png(product.logo(tmp_path / 'product.png'))


def test_alphabet_must_match_the_channels():
    with pytest.raises(ValueError, match='has 4 symbols but the one-hot input has 5 channels'):
        alphabet_symbols('ACGT', n_channels=5)
    assert alphabet_symbols('ACGT', 4) == ('A', 'C', 'G', 'T')


def test_logo_without_logomaker_stacks_letters(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'logomaker', None)  # import logomaker raises ImportError
    made = Motif.from_sequences(['ACGTAC'] * 5 + ['TTTTTT'], 'ACGT')
    assert_png(made.logo(tmp_path / 'logo.png', title='fallback'))


def test_write_meme_is_atomic_and_rejects_mixed_alphabets(tmp_path):
    dna = Motif.from_sequences(['ACGT'], 'ACGT')
    path = write_meme([dna], tmp_path / 'm.meme')
    assert parse_meme(open(path).read())[0] == 'ACGT'
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]
    with pytest.raises(ValueError, match='share one alphabet'):
        write_meme([dna, Motif.from_sequences(['ACGU'], 'ACGU')], tmp_path / 'x.meme')


def test_performance_report_equals_sklearn(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=200)
    probs = rng.dirichlet(np.ones(3), size=200) + np.eye(3)[y] * 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    rows = performance_report(y, probs, ['a', 'b<c', 'd'], tmp_path)
    precision, recall, f1, support = precision_recall_fscore_support(y, probs.argmax(axis=1),
                                                                     labels=[0, 1, 2])
    for c in range(3):
        assert rows[c]['precision'] == pytest.approx(precision[c])
        assert rows[c]['recall'] == pytest.approx(recall[c])
        assert rows[c]['f1'] == pytest.approx(f1[c])
        assert rows[c]['support'] == support[c]
        assert rows[c]['roc_auc'] == pytest.approx(roc_auc_score(y == c, probs[:, c]))
        assert rows[c]['pr_auc'] == pytest.approx(average_precision_score(y == c, probs[:, c]))
    assert rows[3]['class'] == 'macro average'
    assert rows[3]['f1'] == pytest.approx(f1.mean())
    table = (tmp_path / 'performance.csv').read_text().splitlines()
    assert table[0] == 'class,precision,recall,f1,roc_auc,pr_auc,support'
    assert float(table[1].split(',')[3]) == pytest.approx(f1[0])
    assert 'b&lt;c' in (tmp_path / 'performance.html').read_text()
    assert_png(tmp_path / 'roc.png')
    assert_png(tmp_path / 'precision_recall.png')


def test_performance_report_multilabel(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=(100, 2))
    probs = np.clip(y * 0.6 + rng.random((100, 2)) * 0.5, 0, 1)
    rows = performance_report(y, probs, None, tmp_path)
    for c in range(2):
        assert rows[c]['class'] == f'class {c}'
        p, r, f, _ = precision_recall_fscore_support(y[:, c], probs[:, c] >= 0.5,
                                                     average='binary')
        assert (rows[c]['precision'], rows[c]['recall'], rows[c]['f1']) == \
            pytest.approx((p, r, f))


def test_clustering_plot(acts, tmp_path):
    assert_png(interpret.plot_clustering(acts, tmp_path / 'clustering.png'))
    assert_png(interpret.plot_clustering(acts, tmp_path / 'few.png', classes=[1],
                                         max_sequences=20))
    multilabel = dict(acts, labels=np.ones_like(acts['labels']))
    with pytest.raises(ValueError, match='single-label'):
        interpret.plot_clustering(multilabel, tmp_path / 'no.png')


def test_optimized_input_of_the_motif_class_shows_the_motif(tmp_path):
    model = Toy({'layout': 'height1'}, device='cpu')
    found = interpret.visualize_optimized_inputs(model, 'output', tmp_path, (4, 1, 20), 'ACGT',
                                                 nodes=[1], lr=0.1, steps=150)
    assert MOTIF in found[0].consensus
    assert_png(tmp_path / 'optimized_output_1.png')
    with pytest.raises(ValueError, match="did you mean '1'"):
        interpret.visualize_optimized_inputs(model, '1 ', tmp_path, (4, 1, 20), 'ACGT')


def test_networks_without_a_first_convolution_are_refused(toy):
    X, y = toy
    dense = nn.Sequential(nn.Flatten(), nn.Linear(4 * LENGTH, 2))
    with pytest.raises(ValueError, match='no nn.Conv1d or nn.Conv2d layer'):
        interpret.get_max_activations(dense, MatrixBatchGenerator(X, y, 60))
    normed = nn.Sequential(nn.BatchNorm1d(4), nn.Conv1d(4, 2, 6), nn.AdaptiveMaxPool1d(1),
                           nn.Flatten())
    with pytest.raises(ValueError, match='runs after BatchNorm1d, a layer with weights'):
        interpret.get_max_activations(normed, MatrixBatchGenerator(X, y, 60))

    class Scaled(nn.Module):  # no module before the conv, but not the input either
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 6)

        def forward(self, x):
            return self.conv(x * 2).amax(dim=2)
    with pytest.raises(ValueError, match='not one-hot sequences'):
        interpret.get_max_activations(Scaled(), MatrixBatchGenerator(X, y, 60))


def test_interpret_through_the_cli(cli, h5_data, tmp_path):
    path = write_def(tmp_path, CLASSIFIER_DEF + "\nCLASS_NAMES = ['no motif', 'motif']\n")
    result = tmp_path / 'result'
    code, err = cli('-f', path, '-d', h5_data, '-r', result, '-y', '-ep', '1', '--seed', '0',
                    '-c')
    assert code == 0, err
    code, err = cli('-f', path, '-d', h5_data, '-r', result, '--interpret', '-c')
    assert code == 0, err
    folder = result / 'interpret'
    page = (folder / 'summary.html').read_text()
    alphabet, _, motifs = parse_meme((folder / 'motifs.meme').read_text())
    assert alphabet == 'ACGT' and 4 <= len(motifs) <= 8  # filters: 4 or 8
    assert len(re.findall(r'<h2>#\d+: kernel \d+</h2>', page)) == len(motifs)
    for src in re.findall(r'(?:src|href)="([^"#][^"]*)"', page):
        assert (folder / html.unescape(src)).is_file(), src
    # the index at the top links every kernel to its section
    anchors = re.findall(r'href="#(kernel-\d+)"', page)
    assert len(anchors) == len(motifs) and page.index('Kernels by importance') < page.index('<section')
    assert all(f'<section id="{a}">' in page for a in anchors)
    for name in ('performance.csv', 'performance.html', 'roc.png', 'precision_recall.png',
                 'clustering.png', 'optimized_output_0.png', 'optimized_output_1.png'):
        assert (folder / name).is_file(), name
    assert 'no motif' in (folder / 'performance.csv').read_text()


def test_interpret_cli_explains_what_it_cannot_do(cli, h5_data, tmp_path):
    dense = CLASSIFIER_DEF.replace(
        "ConvClassificationNetwork(\n            features=nn.Sequential(nn.Conv2d(4, config['filters'], "
        "(1, 6)), nn.ReLU(),\n                                   nn.MaxPool2d((1, 35))),",
        "ConvClassificationNetwork(\n            features=nn.Flatten(),").replace(
        "nn.Linear(config['filters'], 2)", "nn.Linear(160, 2)").replace(
        "constraints = [MaxNormConstraint(3, 'features.0')]", 'constraints = []')
    assert 'nn.Flatten()' in dense
    path = write_def(tmp_path, dense)
    result = tmp_path / 'result'
    assert cli('-f', path, '-d', h5_data, '-r', result, '-y', '-ep', '1', '--seed', '0')[0] == 0
    code, err = cli('-f', path, '-d', h5_data, '-r', result, '--interpret')
    assert code == 1 and 'Traceback' not in err
    assert 'no nn.Conv1d or nn.Conv2d layer' in err and 'first layer must be a convolution' in err


def test_alphabet_of_a_def_py():
    class Module:
        pass
    assert interpret.definition_alphabet(Module, 4) == tuple('ACGT')
    with pytest.raises(ValueError, match='define ALPHABET in def.py'):
        interpret.definition_alphabet(Module, 20)
    Module.ALPHABET = 'ACDEFGHIKLMNPQRSTVWY'
    assert len(interpret.definition_alphabet(Module, 20)) == 20
    with pytest.raises(ValueError, match='ALPHABET of def.py: .* has 20 symbols but the one-hot '
                                         'input has 4 channels'):
        interpret.definition_alphabet(Module, 4)
