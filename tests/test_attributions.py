"""Attributions on a planted-motif model: ISM against a brute-force loop, gradient × input against
autograd, DeepLIFT/SHAP's summation-to-delta (and its failure being caught), and ``--attribute``:
TF-MoDISco recovers the planted motif and TOMTOM names it."""
import h5py
import numpy as np
import pytest
import torch
from torch import nn

from dlutil.interpret.attributions import deep_lift_shap, gradient_x_input, ism, ism_scores
from dlutil.sequences.onehot import encode_batch
from planted_motif import MOTIF, MOTIF2, load_planted, planted_sequences


@pytest.fixture
def model(tmp_path):
    return load_planted(tmp_path, background=1.0)[1]


def sequences(n, seed=0, length=60):
    return encode_batch([s.encode() for s in planted_sequences(n, length, seed=seed)])


def test_ism_equals_a_brute_force_loop(model):
    X = sequences(3)
    effects = ism(model, X, batch_size=7)
    assert effects.shape == (3, 4, 60, 2)
    network = model.network.eval()
    expected = np.zeros_like(effects)
    with torch.no_grad():
        for i in range(3):
            y0 = network(torch.from_numpy(X[i:i + 1]))[0]
            for position in range(60):
                for letter in range(4):
                    x = X[i].copy()
                    x[:, position] = 0
                    x[letter, position] = 1
                    expected[i, letter, position] = (network(torch.from_numpy(x)[None])[0]
                                                     - y0).numpy()
    np.testing.assert_allclose(effects, expected, atol=1e-5)
    assert np.abs(effects).max() > 1  # the motif: not a vacuous comparison
    # batch size does not change anything; a (n, 4, 1, L) layout is read as (n, 4, L)
    np.testing.assert_allclose(ism(model, X[:, :, None], batch_size=64), effects, atol=1e-5)
    np.testing.assert_allclose(ism(model, X, start=10, end=30), effects[:, :, 10:30], atol=1e-5)
    # per-base scores: on the observed letters only, largest inside the planted motif
    scores = ism_scores(effects[..., 0], X)
    assert np.all(scores[X == 0] == 0)
    start = planted_start(X[0])
    assert start <= np.argmax(scores[0].sum(0)) < start + len(MOTIF)


def planted_start(x):
    letters = ''.join('ACGT'[i] for i in x.argmax(0))
    return letters.index(MOTIF)


def test_gradient_x_input_equals_autograd(model):
    X = sequences(4, seed=1)
    scores = gradient_x_input(model, X, target=1)
    x = torch.from_numpy(X).requires_grad_(True)
    model.network(x)[:, 1].sum().backward()
    np.testing.assert_allclose(scores, (x.grad * x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_deep_lift_shap_sums_to_the_output_difference(model):
    X = sequences(6, seed=2)
    result = deep_lift_shap(model, X, target=0, n_shuffles=8, seed=1, check=True)
    assert result.attributions.shape == (6, 4, 60)
    sums = result.attributions.sum((1, 2))
    # the model's own outputs: the planted motif gives logit 1 plus background; shuffles mostly
    # lose the motif, so the difference is large and the attributions add up to it
    assert np.all(np.abs(result.output_difference) > 0.5)
    np.testing.assert_allclose(sums, result.output_difference, atol=1e-4)
    assert result.max_delta < 1e-4 and 'within' in result.describe()
    hypothetical = deep_lift_shap(model, X, target=0, n_shuffles=8, seed=1, hypothetical=True)
    np.testing.assert_allclose(hypothetical.attributions * X, result.attributions, atol=1e-5)
    # the attributions sit on the motif
    for i in range(6):
        start = planted_start(X[i])
        inside = result.attributions[i, :, start:start + len(MOTIF)].sum()
        assert inside > 0.8 * sums[i]


def test_a_strand_averaging_model_is_explained_on_both_strands(tmp_path):
    """With strand_average = True the model predicts the mean of both strands' logits: ISM and
    gradient x input equal brute force and autograd through that (the model's own scoring), and
    DeepLIFT/SHAP's attributions sum to its output differences."""
    from dlutil.training.evaluation import evaluating, forward, score
    module, _ = load_planted(tmp_path, background=1.0)

    class Averaged(module.Model):
        strand_average = True

    model = Averaged({'background': 1.0}, device='cpu')
    X = sequences(2, seed=5)
    effects = ism(model, X, start=25, end=33)
    expected = np.zeros_like(effects)
    with evaluating(model.network):
        for i in range(2):
            y0 = score(model, X[i:i + 1])[0]
            for position in range(25, 33):
                for letter in range(4):
                    x = X[i:i + 1].copy()
                    x[0, :, position] = 0
                    x[0, letter, position] = 1
                    expected[i, letter, position - 25] = (score(model, x)[0] - y0).numpy()
    np.testing.assert_allclose(effects, expected, atol=1e-5)
    single = ism(module.Model({'background': 1.0}, device='cpu'), X, start=25, end=33)
    assert not np.allclose(single, effects, atol=1e-3)  # the second strand counts
    x = torch.from_numpy(X).requires_grad_(True)
    with evaluating(model.network, grad=True):
        forward(model, x)[:, 1].sum().backward()
    np.testing.assert_allclose(gradient_x_input(model, X, target=1),
                               (x.grad * x).detach().numpy(), rtol=1e-5, atol=1e-6)
    # the output differences are of the averaged logits: attributions of one strand alone
    # would sum to that strand's differences and fail the check
    result = deep_lift_shap(model, X, target=0, n_shuffles=4, seed=1, check=True)
    np.testing.assert_allclose(result.attributions.sum((1, 2)), result.output_difference,
                               atol=1e-4)


class FunctionalReLU(nn.Module):
    """A network whose ReLU is a function call: DeepLIFT cannot see it, the check must."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.seq_len = 60
        self.conv = nn.Conv1d(4, 8, 5)
        self.linear = nn.Linear(8 * 56, 1)

    def forward(self, x):
        return self.linear(torch.relu(self.conv(x)).flatten(1))


def test_deep_lift_shap_reports_a_convergence_failure():
    X = sequences(4, seed=3)
    result = deep_lift_shap(FunctionalReLU(), X, n_shuffles=4)
    assert result.relative_delta > 1e-3
    with pytest.raises(RuntimeError, match='above the tolerance'):
        deep_lift_shap(FunctionalReLU(), X, n_shuffles=4, check=True)


def test_attribute_recovers_the_planted_motif(tmp_path, cli):
    """The one slow test (TF-MoDISco compiles its numba kernels on first use: about a minute on
    two loaded cores). ``--attribute`` on 200 test sequences with the planted motif."""
    from conftest import write_h5
    from dlutil.search import results
    module, model = load_planted(tmp_path, background=1.0)
    data = tmp_path / 'data'
    data.mkdir()
    X = sequences(200, seed=4)
    write_h5(data / 'test.h5', X, np.ones((200, 2), np.float32))
    checkpoint = tmp_path / 'best.pt'
    results.save_checkpoint(str(checkpoint), {'model': model.state_dict(), 'epoch': 1,
                                              'config': {'background': 1.0}})
    database = tmp_path / 'db.meme'
    database.write_text(meme_database())
    code, err = cli('--model', tmp_path / 'planted_def.py', '--data', data, '--result',
                    tmp_path / 'res', '--checkpoint', checkpoint, '--attribute',
                    '--attribute-top', 200, '--attribute-logos', 2, '--motifs', database,
                    '--modisco-window', 7, '--cpu', '--batch-size', 64)
    assert code == 0, err
    folder = tmp_path / 'res' / 'interpret'
    page = (folder / 'attributions.html').read_text()
    assert 'DeepLIFT/SHAP convergence: attributions sum to the output difference' in page
    assert (folder / 'attribution_0.png').stat().st_size > 1000
    with h5py.File(folder / 'attributions.h5') as f:
        assert f['hypothetical'].shape == (200, 4, 60)
        assert np.abs(f['delta'][:]).max() < 1e-3
    meme = (folder / 'modisco.meme').read_text()
    consensus = [line.split()[2] for line in meme.splitlines() if line.startswith('MOTIF')]
    assert any(MOTIF in c for c in consensus), consensus
    matches = [line.split('\t') for line in
               (folder / 'modisco_tomtom.tsv').read_text().splitlines()[1:]]
    first = [m for m in matches if m[0] == 'pos_0']
    assert first[0][1] == 'AP1_planted' and float(first[0][2]) < 1e-3, matches
    assert 'AP1_planted' in page


def meme_database():
    """The planted motif among decoys, in MEME format."""
    rng = np.random.default_rng(0)
    motifs = {'AP1_planted': MOTIF, 'GC_box': MOTIF2}
    for k in range(28):
        motifs[f'decoy_{k}'] = ''.join(rng.choice(list('ACGT'), 8))
    text = 'MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n'
    text += 'Background letter frequencies\nA 0.25 C 0.25 G 0.25 T 0.25\n\n'
    for name, consensus in motifs.items():
        rows = [[0.91 if c == letter else 0.03 for c in 'ACGT'] for letter in consensus]
        text += (f'MOTIF {name}\nletter-probability matrix: alength= 4 w= {len(rows)} '
                 f'nsites= 20 E= 0\n' + ''.join(' '.join(f'{p:.2f}' for p in r) + '\n'
                                                for r in rows) + '\n')
    return text
