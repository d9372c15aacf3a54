"""Local-ancestry training on a small stdpopsim panel: every configuration of the example's
search space learns at small and large batch sizes; SegNet learns with the allele-likelihood
encoding where deepLAI's one-hot alleles give it nothing to learn from."""
import importlib.util
import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, 'examples', 'local_ancestry')


@pytest.fixture(scope='module')
def panel(tmp_path_factory):
    """The example's def.py loaded on a 1 Mb AmericanAdmixture_4B18 panel (6 per population)."""
    root = tmp_path_factory.mktemp('lai_training')
    subprocess.run([sys.executable, os.path.join(EXAMPLE, 'simulate.py'), '--out',
                    str(root / 'data'), '--reference', '6', '--admixed', '3', '--length', '1e6',
                    '--seed', '3'], check=True, capture_output=True)
    saved = os.environ.get('DLUTIL_CACHE')
    os.environ['DLUTIL_CACHE'] = str(root / 'cache')
    spec = importlib.util.spec_from_file_location('lai_def_training',
                                                  os.path.join(EXAMPLE, 'def.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load(str(root / 'data'))
    yield module, str(root / 'data')
    if saved is None:
        os.environ.pop('DLUTIL_CACHE', None)
    else:
        os.environ['DLUTIL_CACHE'] = saved


def train(definition, data, config, batch_size, founders, seed=0):
    """Validation loss before and after training ``config`` on ``founders`` panel haplotypes
    (one epoch), and the validation accuracy after."""
    torch.manual_seed(seed)
    definition.EPOCH_HAPLOTYPES = founders
    generator, val = definition.get_train_generator(data, batch_size)
    model = definition.Model(config, device='cpu')
    model.init_model()
    before = model.evaluate(val)['loss']
    result = model.run_epoch(generator, val)
    return before, result['val_loss'], result['val_accuracy']


def window_space(definition):
    keys = sorted(definition.WINDOW_SPACE)
    for values in itertools.product(*(definition.WINDOW_SPACE[k] for k in keys)):
        yield dict(zip(keys, values), network='window')


def test_the_window_search_space_is_small_enough_to_test_whole(panel):
    definition, _ = panel
    assert len(list(window_space(definition))) == 32
    drawn = definition.get_config()
    assert any(drawn == config for config in window_space(definition))


@pytest.mark.parametrize('batch_size', [8, 128])
def test_every_window_configuration_lowers_validation_loss(panel, batch_size):
    # the stability claim: whatever the configuration and the batch size, one epoch of the
    # shipped budget (EPOCH_HAPLOTYPES founders) lowers the validation loss below where it began
    # (each window's classifier starts at its tempered naive-Bayes score, below chance already)
    definition, data = panel
    failures = []
    for config in window_space(definition):
        before, after, _ = train(definition, data, config, batch_size,
                                 definition.EPOCH_HAPLOTYPES)
        if not (math.isfinite(after) and after < before - 0.02):
            failures.append((config, before, after))
    assert not failures, failures


def test_the_learning_rate_follows_haplotypes_not_batches(panel):
    definition, _ = panel
    model = definition.Model({'network': 'window', 'learning_rate': 0.01,
                              'warmup_haplotypes': 1000, 'reference_batch': 32}, device='cpu')
    model.init_model()
    assert model.learning_rate(32) == pytest.approx(0.01 * 32 / 1000)  # warming up
    model.seen = 968
    assert model.learning_rate(32) == pytest.approx(0.01)  # the peak at the warm-up's end
    model.seen = 4000 - 128
    assert model.learning_rate(128) == pytest.approx(0.01 * 2 * math.sqrt(1000 / 4000))


def test_segnet_learns_with_the_likelihood_encoding_not_with_one_hot(panel):
    definition, data = panel
    base = {'network': 'segnet', 'width': 8, 'n_filters': 4, 'pool_size': 4, 'n_blocks': 3,
            'learning_rate': 0.01, 'warmup_haplotypes': 256}
    results = {encoding: train(definition, data, dict(base, encoding=encoding), 16, 512)
               for encoding in ('likelihood', 'one_hot')}
    chance = math.log(3)
    likelihood, one_hot = results['likelihood'], results['one_hot']
    assert likelihood[1] < chance - 0.05, results  # below chance: it learnt
    assert likelihood[2] > one_hot[2] + 0.15, results
    assert one_hot[1] > chance - 0.05, results  # one-hot alleles: nothing to learn from


def test_likelihood_encoding_matches_naive_bayes_per_variant():
    # the encoding's features are the naive-Bayes log-likelihoods, centred over ancestries
    from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
    from dlutil.genotypes.encoding import AlleleEncoding
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (40, 30)).astype(np.uint8)
    labels = np.repeat([0, 1, 2, 3], 10)
    nb = WindowedNaiveBayes(4).update(x, labels)
    encoder = AlleleEncoding(30, 4, 'likelihood')
    encoder.set_frequencies(nb.alt, nb.total, min_minor_count=0)
    query = rng.integers(0, 2, (5, 30)).astype(np.uint8)
    query[0, 3] = 255  # missing: zeros
    features = encoder(torch.as_tensor(query)).numpy()
    log_ref, log_alt = nb.log_frequencies()
    expected = np.where(query[:, None, :] == 1, log_alt[None], log_ref[None])
    expected = expected - expected.mean(axis=1, keepdims=True)
    expected[0, :, 3] = 0
    np.testing.assert_allclose(features, expected, atol=1e-5)
    # window sums of the features rank ancestries as naive Bayes does
    calls = nb.predict(query, 30)[:, 0]
    assert np.array_equal(features.sum(axis=2).argmax(axis=1), calls)
