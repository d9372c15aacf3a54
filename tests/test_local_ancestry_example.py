"""The local-ancestry example end to end on a tiny stdpopsim panel: VCF in, tracts out; the data
folder stays input (re-runs continue, an edited table is noticed, foreign queries refused)."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from dlutil.genotypes.h5 import open_genotypes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, 'examples', 'local_ancestry')
NAMES = ['AFR', 'ASIA', 'EUR']


def simulate(out, *extra):
    subprocess.run([sys.executable, os.path.join(EXAMPLE, 'simulate.py'), '--out', str(out),
                    '--reference', '6', '--admixed', '3', '--length', '1e6', '--seed', '3',
                    *extra], check=True, capture_output=True)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp('lai') / 'data'
    simulate(folder)
    return folder


def listing(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
                  for p in folder.rglob('*'))


def run_main(data, results, cache, *args):
    env = dict(os.environ, DLUTIL_CACHE=str(cache),
               LAI_CONFIG=json.dumps({'network': 'window', 'window': 50, 'smoother_width': 3,
                                      'learning_rate': 0.01}))
    return subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), '-f',
                           os.path.join(EXAMPLE, 'def.py'), '-d', str(data), '-r', str(results),
                           *args, '--threads', '1', '--seed', '0'],
                          env=env, capture_output=True, text=True)


def test_example_from_vcf_to_tracts_leaves_data_alone_and_reruns(data, tmp_path):
    results, cache = tmp_path / 'results', tmp_path / 'cache'
    before = listing(data)
    command = ('-y', '-e', '-p', 'query.vcf.gz', '-ep', '2', '--eta', '3', '-bs', '8')
    run = run_main(data, results, cache, *command)
    assert run.returncode == 0, run.stderr[-3000:]
    assert listing(data) == before  # nothing written into --data
    assert [p.name for p in (cache / 'genotypes').iterdir() if p.name.startswith('reference')]
    test = json.loads((results / 'test_result.json').read_text())
    assert 0 <= test['accuracy'] <= 1 and 'recall_AFR' in test and 'confusion_EUR_ASIA' in test
    assert 'query variants dropped' in run.stderr  # the alignment was reported
    out = results / 'predictions'
    with h5py.File(out / 'query.vcf.gz.ancestry.h5') as f:
        probabilities, calls = f['probabilities'][:], f['calls'][:]
        positions = f['positions'][:]
        assert list(f.attrs['ancestries']) == NAMES
    assert probabilities.shape == calls.shape + (3,) and calls.shape[0] == 6
    np.testing.assert_array_equal(calls, probabilities.argmax(axis=2))
    rows = (out / 'query.vcf.gz.tracts.tsv').read_text().splitlines()
    assert rows[0].split('\t') == ['haplotype', 'chromosome', 'start', 'end', 'ancestry',
                                   'n_variants']
    per_haplotype = {}  # the tracts of each haplotype cover its variants once
    for row in rows[1:]:
        name, chromosome, start, end, ancestry, n = row.split('\t')
        per_haplotype[name] = per_haplotype.get(name, 0) + int(n)
        assert int(start) <= int(end) and ancestry in NAMES and chromosome == '22'
    assert set(per_haplotype.values()) == {len(positions)} and len(per_haplotype) == 6
    assert (out / 'query.vcf.gz.tracts.png').read_bytes()[:4] == b'\x89PNG'

    # the same command again continues (nothing to do) instead of refusing a changed --data
    again = run_main(data, results, cache, *command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'other settings' not in again.stderr
    assert listing(data) == before


def load_def():
    spec = importlib.util.spec_from_file_location('lai_def_under_test',
                                                  os.path.join(EXAMPLE, 'def.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_edited_sample_table_is_a_new_panel(data, tmp_path, monkeypatch):
    monkeypatch.setenv('DLUTIL_CACHE', str(tmp_path / 'cache'))
    folder = tmp_path / 'd'
    shutil.copytree(data, folder)
    definition = load_def()
    first = definition.reference_path(str(folder))
    info = open_genotypes(first)
    afr_row = info.samples.index('AFR001_A')
    assert info.ancestries[info.haplotype_labels()[afr_row]] == 'AFR'
    assert definition.reference_path(str(folder)) == first  # the same inputs: converted once
    table = folder / 'reference.samples.tsv'
    table.write_text(table.read_text().replace('AFR001\tAFR', 'AFR001\tEUR'))
    second = definition.reference_path(str(folder))
    assert second != first
    info = open_genotypes(second)
    assert info.ancestries[info.haplotype_labels()[afr_row]] == 'EUR'


@pytest.mark.parametrize('change, message', [
    ({'chromosome': '2'}, "on chromosome '2' but the model was trained on chromosome '22'"),
    ({'shift': 1}, "fewer than the 50% needed"),
])
def test_foreign_queries_are_refused(data, tmp_path, monkeypatch, change, message):
    from dlutil.genotypes.h5 import write_genotypes
    monkeypatch.setenv('DLUTIL_CACHE', str(tmp_path / 'cache'))
    definition = load_def()
    truth = open_genotypes(str(data / 'query.truth.h5'))
    with h5py.File(truth.path) as f:
        x = f['data'][:]
    query = tmp_path / 'q' / 'query.h5'
    query.parent.mkdir()
    write_genotypes(str(query), x, truth.positions + change.get('shift', 0), truth.samples,
                    change.get('chromosome', '22'))
    definition.load(str(data))
    with pytest.raises(ValueError, match=message):
        definition.get_pred_generator(str(query))
    # 'chr22' names chromosome 22 too, and the same variants pass
    write_genotypes(str(query), x, truth.positions, truth.samples, 'chr22')
    assert definition.get_pred_generator(str(query)).alignment.counts['filled'] == 0


def test_switch_errors_swap_truth_with_the_alleles():
    sys.path.insert(0, EXAMPLE)
    try:
        from simulate import switch_errors
    finally:
        sys.path.remove(EXAMPLE)
    genotypes = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 1]], np.uint8)
    labels = np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    same = switch_errors(genotypes, labels, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(same[0], genotypes)
    assert same[2] == 0
    # rate 1: a switch after every heterozygous site (0, 1, 3)
    g, lab, n = switch_errors(genotypes, labels, 1.0, np.random.default_rng(0))
    assert n == 3
    np.testing.assert_array_equal(lab, [[0, 1, 0, 0, 1], [1, 0, 1, 1, 0]])
    np.testing.assert_array_equal(g, [[0, 0, 0, 1, 1], [1, 1, 0, 0, 1]])
