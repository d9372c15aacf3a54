"""The local-ancestry example end to end on a tiny msprime panel: VCF in, tracts out."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, 'examples', 'local_ancestry')


def test_example_from_vcf_to_tracts(tmp_path):
    data, results, out = tmp_path / 'data', tmp_path / 'results', tmp_path / 'predictions'
    subprocess.run([sys.executable, os.path.join(EXAMPLE, 'simulate.py'), '--out', str(data),
                    '--reference', '6', '--admixed', '3', '--length', '1e6', '--seed', '3'],
                   check=True, capture_output=True)
    assert not (data / 'reference.h5').exists()  # def.py converts the VCF itself
    env = dict(os.environ, LAI_OUT=str(out),
               LAI_CONFIG=json.dumps({'network': 'window', 'window': 50, 'smoother_width': 3,
                                      'learning_rate': 0.01}))
    run = subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), '-f',
                          os.path.join(EXAMPLE, 'def.py'), '-d', str(data), '-r', str(results),
                          '-y', '-e', '-p', 'query.vcf.gz', '-ep', '2', '--eta', '3', '-bs', '8',
                          '--threads', '1', '--seed', '0', '-c'],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (data / 'reference.h5').exists()
    test = json.loads((results / 'test_result.json').read_text())
    assert 0 <= test['accuracy'] <= 1 and 'recall_AFR' in test and 'confusion_EUR_EAS' in test
    assert 'query variants dropped' in run.stderr  # the alignment was reported
    with h5py.File(out / 'query.vcf.gz.ancestry.h5') as f:
        probabilities, calls = f['probabilities'][:], f['calls'][:]
        positions = f['positions'][:]
        assert list(f.attrs['ancestries']) == ['AFR', 'EAS', 'EUR']
    assert probabilities.shape == calls.shape + (3,) and calls.shape[0] == 6
    np.testing.assert_array_equal(calls, probabilities.argmax(axis=2))
    rows = (out / 'query.vcf.gz.tracts.tsv').read_text().splitlines()
    assert rows[0].split('\t') == ['haplotype', 'chromosome', 'start', 'end', 'ancestry',
                                   'n_variants']
    # the tracts of each haplotype cover its variants once
    per_haplotype = {}
    for row in rows[1:]:
        name, _, start, end, ancestry, n = row.split('\t')
        per_haplotype[name] = per_haplotype.get(name, 0) + int(n)
        assert int(start) <= int(end) and ancestry in ('AFR', 'EAS', 'EUR')
    assert set(per_haplotype.values()) == {len(positions)} and len(per_haplotype) == 6
    assert (out / 'query.vcf.gz.tracts.png').read_bytes()[:4] == b'\x89PNG'
