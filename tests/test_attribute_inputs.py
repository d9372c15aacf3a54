"""``--attribute`` on the inputs our own encoders make, from the command line: windows that run off
a chromosome end (padded with N by ``prepare``) and windows holding the genome's N; a two-class
classifier explained for its positive class; a failing ``--attribute`` that loses none of the
other outputs asked for in the same command. And the convention behind it, checked against
brute force: N and padding columns get no attribution, the model sees them as encoded, and
DeepLIFT's references keep them in place."""
import h5py
import numpy as np
import pytest
import torch
from torch import nn

from conftest import write_def
from dlutil.interpret.attributions import (convergence_cause, deep_lift_shap, gradient_x_input,
                                           ism, shuffled_references, split_bases)
from dlutil.sequences.onehot import encode_batch
from planted_motif import MOTIF, LENGTH, load_planted, planted_sequences, random_dna

#: a two-class classifier: class 1 (positive) fires on MOTIF, class 0 on nothing in particular
BINARY_DEF = f'''
import os

import torch
from torch import nn

from base_model import ClassificationModel
from batch_generator import H5pyBatchGenerator


class Net(nn.Module):
    def __init__(self, seq_len={LENGTH}):
        super().__init__()
        self.seq_len = seq_len
        self.conv = nn.Conv1d(4, 2, 7)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool1d(seq_len - 6)
        self.linear = nn.Linear(2, 2)
        with torch.no_grad():
            motif = torch.tensor([[float(b == c) for b in {MOTIF!r}] for c in 'ACGT'])
            self.conv.weight[1] = motif * 2 - 1
            self.conv.weight[0] = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
            self.conv.bias[:] = torch.tensor([0.0, -5.0])
            self.linear.weight[:] = torch.tensor([[0.3, 0.0], [0.0, 1.5]])
            self.linear.bias[:] = torch.tensor([0.5, -1.0])

    def forward(self, x):
        return self.linear(self.pool(self.relu(self.conv(x))).flatten(1))


class Model(ClassificationModel):
    def init_model(self):
        network = Net()
        super().init_model(network, optimizer=torch.optim.SGD(network.parameters(), lr=0))


def get_test_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'all.h5'))


def get_pred_generator(path):
    return H5pyBatchGenerator(path)


def get_config():
    return {{}}
'''


def with_n(X):
    """X with N (0.25 in all four rows) and padding (zeros) in some windows."""
    X = X.copy()
    X[0, :, 5] = 0.25                 # one N
    X[1, :, 40:44] = 0.25             # an assembly gap
    X[2, :, :10] = 0                  # padding before a chromosome start
    X[3, :, 50:] = 0.25               # prepare's padding after a chromosome end
    return X


@pytest.fixture
def planted(tmp_path):
    return load_planted(tmp_path, background=1.0)[1]


def test_n_and_padding_get_no_attribution_and_the_rest_adds_up(planted):
    X = with_n(encode_batch([s.encode() for s in planted_sequences(6, seed=2)]))
    result = deep_lift_shap(planted, X, target=0, n_shuffles=8, seed=1, check=True)
    assert np.all(result.attributions[0, :, 5] == 0)
    assert np.all(result.attributions[1, :, 40:44] == 0)
    assert np.all(result.attributions[2, :, :10] == 0)
    assert np.all(result.attributions[3, :, 50:] == 0)
    # the bases' attributions sum to the output difference of the input as the model saw it
    np.testing.assert_allclose(result.attributions.sum((1, 2)), result.output_difference,
                               atol=1e-4)
    assert np.all(np.abs(result.output_difference) > 0.5)  # not a vacuous sum
    hypothetical = deep_lift_shap(planted, X, target=0, n_shuffles=8, seed=1, hypothetical=True)
    assert np.all(hypothetical.attributions[3, :, 50:] == 0)
    np.testing.assert_allclose(hypothetical.attributions * X, result.attributions, atol=1e-5)


def test_references_keep_n_in_place_and_shuffle_the_bases():
    rng = np.random.default_rng(0)
    X = with_n(encode_batch([random_dna(rng, LENGTH).encode() for _ in range(5)]))
    bases, unknown, is_base = split_bases(X)
    assert torch.equal(bases + unknown, torch.from_numpy(X))
    references = shuffled_references(bases, is_base, 6, seed=3)
    for i in range(5):
        for k in range(6):
            reference = references[i, k]
            # N and padding stay where they are (as all-zero columns: the model adds them back)
            assert torch.all(reference[:, ~is_base[i]] == 0)
            kept, original = reference[:, is_base[i]], bases[i][:, is_base[i]]
            assert torch.equal(kept.sum(0), torch.ones(kept.shape[1]))
            # a dinucleotide shuffle of the bases cut out: the same dinucleotides
            assert dinucleotides(kept) == dinucleotides(original)
        assert not torch.equal(references[i, 0], bases[i])
    # without N, the references are tangermeme's own (its deep_lift_shap random_state)
    from tangermeme.ersatz import dinucleotide_shuffle
    plain = bases[4:5]
    np.testing.assert_array_equal(references[4, 2], dinucleotide_shuffle(plain, n=1,
                                                                         random_state=5)[0, 0])


def dinucleotides(x):
    letters = x.argmax(0).tolist()
    return sorted(zip(letters, letters[1:]))


def test_ism_and_gradient_see_n_as_encoded(planted):
    """Against brute force on the model itself: edits of a base with the N left at 0.25."""
    X = with_n(encode_batch([s.encode() for s in planted_sequences(4, seed=7)]))[:2]
    effects = ism(planted, X, start=0, end=LENGTH)
    network = planted.network.eval()
    with torch.no_grad():
        for i in range(2):
            y0 = network(torch.from_numpy(X[i:i + 1]))[0]
            for position in (3, 6, 30, 45):
                for letter in range(4):
                    x = X[i].copy()
                    x[:, position] = 0
                    x[letter, position] = 1
                    expected = (network(torch.from_numpy(x)[None])[0] - y0).numpy()
                    if X[i, letter, position] == 1:
                        expected = 0 * expected
                    np.testing.assert_allclose(effects[i, letter, position], expected,
                                               atol=1e-5)
    assert np.all(effects[0, :, 5] == 0) and np.all(effects[1, :, 40:44] == 0)
    x = torch.from_numpy(X).requires_grad_(True)
    network(x)[:, 0].sum().backward()
    scores = gradient_x_input(planted, X, target=0)
    bases = split_bases(X)[0].numpy()
    np.testing.assert_allclose(scores, (x.grad.numpy() * bases), rtol=1e-5, atol=1e-6)


def test_dropout_stays_off_and_the_check_holds():
    """The shipped conv_seq_classifier's network has dropout after its pool: tangermeme used to
    leave the wrapper (a new module, so in training mode) training, and the check then compared
    attributions with outputs under dropout."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv1d(4, 8, 7), nn.ReLU(), nn.MaxPool1d(LENGTH - 6),
                            nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 2))
    network.seq_len = LENGTH
    X = with_n(encode_batch([s.encode() for s in planted_sequences(4, seed=3)]))
    first = deep_lift_shap(network, X, target=1, n_shuffles=4, check=True)
    again = deep_lift_shap(network, X, target=1, n_shuffles=4)
    np.testing.assert_array_equal(first.attributions, again.attributions)
    assert first.relative_delta < 1e-5 and network.training  # its own mode given back


def test_a_column_that_is_no_encoding_is_refused(planted):
    X = encode_batch([s.encode() for s in planted_sequences(3, seed=1)])
    X[2, :2, 17] = 0.7
    with pytest.raises(ValueError, match=r'sequence 2 holds \[0.7, 0.7, .*position 17'):
        deep_lift_shap(planted, X)


def test_the_convergence_warning_names_the_module_deeplift_has_no_rule_for():
    network = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(),
                            nn.Linear(3, 1))
    assert convergence_cause(network) == ('DeepLIFT has no rule for 2 (AdaptiveMaxPool1d) and '
                                          'treats it as linear')
    plain = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten())
    assert convergence_cause(plain).startswith('every module of the network is linear or has a '
                                               'DeepLIFT rule; an operation outside a module')


def genome_and_bed(folder):
    """A genome with the motif planted and an assembly gap, and BED windows of LENGTH, some
    running off a chromosome end (prepare pads them with N)."""
    rng = np.random.default_rng(0)
    chroms = {}
    for name in ('chr1', 'chr2'):
        s = list(random_dna(rng, 400))
        for start in range(20, 380, 45):
            s[start:start + len(MOTIF)] = MOTIF
        chroms[name] = s
    chroms['chr1'][200:215] = 'N' * 15
    (folder / 'genome.fa').write_text(''.join(f'>{n}\n{"".join(s)}\n' for n, s in
                                              chroms.items()))
    rows = []
    for name, s in chroms.items():
        for centre in [5, 390, 205, *rng.integers(30, 370, 12)]:
            window = ''.join(s[max(0, centre - 30):centre + 30])
            rows.append(f'{name}\t{centre}\t{centre + 1}\tr{len(rows)}\t{int(MOTIF in window)}\n')
    (folder / 'windows.bed').write_text(''.join(rows))
    return folder / 'genome.fa', folder / 'windows.bed'


@pytest.fixture
def binary_data(tmp_path):
    """DATA/all.h5 made by prepare from windows crossing chromosome ends, and a checkpoint of
    the two-class classifier."""
    from dlutil.definition import load_module
    from dlutil.search import results
    genome, bed = genome_and_bed(tmp_path)
    from dlutil.prepare import cli as prepare_cli
    assert prepare_cli.main(['bed', str(bed), '-g', str(genome), '-L', str(LENGTH),
                             '--no-split', '-o', str(tmp_path / 'data')]) == 0
    definition = write_def(tmp_path, BINARY_DEF)
    model = load_module(str(definition)).Model({}, device='cpu')
    checkpoint = tmp_path / 'best.pt'
    results.save_checkpoint(str(checkpoint), {'model': model.state_dict(), 'epoch': 1,
                                              'config': {}})
    with h5py.File(tmp_path / 'data' / 'all.h5') as f:
        X = f['data'][:]
    padded = np.flatnonzero((X == 0.25).all(1).any(1))
    assert len(padded) >= 4  # the chromosome ends and the gap: the test is not vacuous
    return definition, tmp_path / 'data', checkpoint, X


def test_attribute_explains_windows_off_a_chromosome_end(tmp_path, binary_data, cli):
    """The two-class classifier is explained for class 1 by default, on windows with N."""
    definition, data, checkpoint, X = binary_data
    code, err = cli('-f', definition, '-d', data, '-r', tmp_path / 'res', '--checkpoint',
                    checkpoint, '--attribute', '--attribute-sequences', len(X),
                    '--attribute-logos', 1, '--modisco-window', 7, '--cpu')
    assert code == 0, err
    assert 'explaining class 1, the positive class of a two-class classifier' in err
    with h5py.File(tmp_path / 'res' / 'interpret' / 'attributions.h5') as f:
        rows, x, deeplift = f['index'][:], f['x'][:], f['deeplift'][:]
        hypothetical, delta, output = f['hypothetical'][:], f['delta'][:], f['output'][:]
    np.testing.assert_array_equal(x, X[rows])  # as the encoder wrote it: N is 0.25
    unknown = ~((x == 0) | (x == 1)).all(1) | (x.sum(1) != 1)
    assert unknown.sum() >= 30
    assert np.all(deeplift.transpose(0, 2, 1)[unknown] == 0)
    assert np.all(hypothetical.transpose(0, 2, 1)[unknown] == 0)
    assert np.abs(delta).max() < 1e-4
    # the top sequence by the class-1 logit carries the motif, and its logit is class 1's
    letters = ''.join('ACGTN'[i if x[0, :, j].max() == 1 else 4]
                      for j, i in enumerate(x[0].argmax(0)))
    assert MOTIF in letters and output[0] == output.max() > 0


def test_a_failing_attribute_loses_no_other_output(tmp_path, binary_data, cli):
    """--attribute fails (a target the model does not have); -e, --interpret and -p, asked for
    in the same command, still write their outputs; one line says what failed; exit 1."""
    definition, data, checkpoint, X = binary_data
    code, err = cli('-f', definition, '-d', data, '-r', tmp_path / 'res', '--checkpoint',
                    checkpoint, '--attribute', '--attribute-target', 'enhancer', '-e',
                    '--interpret', '--interpret-kernels', 1, '-p', 'all.h5', '--cpu')
    assert code == 1, err
    errors = [line for line in err.splitlines() if 'error' in line or 'failed' in line]
    assert errors == ["error: --attribute: --attribute-target 'enhancer': not an output index "
                      "(0 to 1), and the outputs have no names (CLASS_NAMES in def.py, or the "
                      "model's task_names)",
                      '--attribute failed; -e, --interpret, -p finished and wrote their outputs']
    assert err.strip().splitlines()[-1] == errors[-1] and 'Traceback' not in err
    result = tmp_path / 'res'
    assert (result / 'test_result.json').exists()
    assert (result / 'interpret' / 'summary.html').exists()
    assert (result / 'predictions' / 'all.h5.tsv').exists()
    assert not (result / 'interpret' / 'attributions.html').exists()


def test_prediction_columns_take_the_models_task_names(tmp_path, cli):
    """A MultiLabelModel with ``task_names`` (as the zoo's Basset def.py sets them) and no
    CLASS_NAMES: the prediction TSV of -p names its columns after the tasks."""
    from conftest import write_h5
    from dlutil.search import results
    from planted_motif import PLANTED_DEF
    text = (PLANTED_DEF.replace("CLASS_NAMES = ['ap1', 'gc']", '')
            .replace('class Model(MultiLabelModel):\n',
                     "class Model(MultiLabelModel):\n    task_names = ['ap1', 'gc']\n\n")
            + '\n\ndef get_pred_generator(path):\n    return H5pyBatchGenerator(path)\n')
    definition = write_def(tmp_path, text)
    module, model = load_planted(tmp_path)
    data = tmp_path / 'data'
    data.mkdir()
    write_h5(data / 'new.h5', encode_batch([s.encode() for s in planted_sequences(3)]))
    checkpoint = tmp_path / 'best.pt'
    results.save_checkpoint(str(checkpoint), {'model': model.state_dict(), 'epoch': 1,
                                              'config': {}})
    code, err = cli('-f', definition, '-d', data, '-r', tmp_path / 'res', '--checkpoint',
                    checkpoint, '-p', 'new.h5', '--cpu')
    assert code == 0, err
    header = (tmp_path / 'res' / 'predictions' / 'new.h5.tsv').read_text().splitlines()[0]
    assert header.split('\t') == ['row', 'ap1', 'gc']
