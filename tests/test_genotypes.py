"""Genotype data for local ancestry: VCF -> HDF5, alignment, admixture, the generator, tracts."""
import os

import h5py
import numpy as np
import pytest

from batch_generator import GenotypeBatchGenerator
from dlutil.genotypes.admixture import Admixer, read_genetic_map
from dlutil.genotypes.align import Alignment
from dlutil.genotypes.generator import admixed_validation, split_panel
from dlutil.genotypes.h5 import IGNORE, MISSING, open_genotypes, write_genotypes
from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
from dlutil.genotypes.tracts import plot_tracts, runs, tracts, write_tracts
from dlutil.genotypes.vcf import read_sample_table, vcf_to_h5
from dlutil.prepare.cli import main as prepare_main
from dlutil.sequences.readers import InputError

HEADER = ('##fileformat=VCFv4.2\n##contig=<ID=chr7>\n'
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
          '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{}\n')


def write_vcf(path, samples, records, bgzip=False):
    """records: (pos, alt, [genotype strings]) on chr7."""
    text = HEADER.format('\t'.join(samples))
    for pos, alt, gts in records:
        text += f'chr7\t{pos}\t.\tA\t{alt}\t.\tPASS\t.\tGT\t' + '\t'.join(gts) + '\n'
    if bgzip:
        import pysam
        plain = str(path) + '.plain'
        with open(plain, 'w') as handle:
            handle.write(text)
        pysam.tabix_compress(plain, str(path), force=True)
    else:
        with open(path, 'w') as handle:
            handle.write(text)
    return str(path)


def write_table(path, rows, header=True):
    with open(path, 'w') as handle:
        if header:
            handle.write('sample\tpopulation\n')
        handle.writelines(f'{s}\t{p}\n' for s, p in rows)
    return str(path)


@pytest.fixture
def panel(tmp_path):
    """A 3-sample VCF with a missing call, a multi-allelic record and a repeated position."""
    records = [(100, 'G', ['0|1', '1|1', '0|0']),
               (150, 'G,T', ['0|1', '0|2', '0|0']),   # multi-allelic: skipped
               (200, 'C', ['1|0', '.|1', '0|1']),
               (200, 'T', ['1|1', '1|1', '1|1']),     # same position: skipped
               (350, 'T', ['0|0', '0/0', '1|0'])]     # unphased but homozygous: kept
    vcf = write_vcf(tmp_path / 'ref.vcf.gz', ['s1', 's2', 's3'], records, bgzip=True)
    table = write_table(tmp_path / 'ref.tsv', [('s1', 'EUR'), ('s2', 'AFR'), ('s3', 'EUR')])
    return vcf, table


def test_vcf_round_trip(panel, tmp_path):
    vcf, table = panel
    out = str(tmp_path / 'ref.h5')
    summary = vcf_to_h5(vcf, out, table, block=2)  # blocks smaller than the file
    info = open_genotypes(out)
    assert info.chromosome == 'chr7'
    assert info.samples == ['s1_A', 's1_B', 's2_A', 's2_B', 's3_A', 's3_B']
    assert info.positions.tolist() == [100, 200, 350]
    assert info.ancestries == ['AFR', 'EUR'] and info.label_kind == 'haplotype'
    assert info.haplotype_labels().tolist() == [1, 1, 0, 0, 1, 1]
    with h5py.File(out) as f:
        data = f['data'][:]
        assert f['data'].chunks is not None
    expected = np.array([[0, 1, 0], [1, 0, 0], [1, MISSING, 0], [1, 1, 0], [0, 0, 1],
                         [0, 1, 0]], np.uint8)
    np.testing.assert_array_equal(data, expected)
    assert summary['skipped']['multiallelic'] == 1
    assert summary['skipped']['duplicate_position'] == 1
    assert summary['variants'] == 3 and summary['haplotypes'] == 6


def test_write_genotypes_per_variant_labels(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 2, (5, 20000)).astype(np.uint8)  # more than one chunk of variants
    label = rng.integers(0, 3, (5, 20000))
    positions = np.arange(20000) * 3 + 7
    path = tmp_path / 'adm.h5'
    write_genotypes(path, data, positions, list('abcde'), '2', ['x', 'y', 'z'], label)
    info = open_genotypes(path)
    assert info.label_kind == 'variant' and info.n_variants == 20000
    x, y = GenotypeBatchGenerator(str(path)).read_all()
    np.testing.assert_array_equal(x, data)
    np.testing.assert_array_equal(y, label)


def test_bad_vcfs_get_clear_errors(tmp_path):
    samples = ['s1', 's2']
    unphased = write_vcf(tmp_path / 'u.vcf', samples, [(5, 'G', ['0/1', '0|0'])])
    with pytest.raises(InputError, match=r'u.vcf: chr7:5 has an unphased heterozygous call '
                                         r'\(sample s1: 0/1\)'):
        vcf_to_h5(unphased, str(tmp_path / 'u.h5'))
    with pytest.raises(InputError, match=r"u.vcf: no usable variants .*'unphased': 1"):
        vcf_to_h5(unphased, str(tmp_path / 'u.h5'), unphased='skip')
    unsorted = write_vcf(tmp_path / 's.vcf', samples, [(9, 'G', ['0|1', '0|0']),
                                                       (5, 'G', ['0|1', '0|0'])])
    with pytest.raises(InputError, match=r'not sorted: chr7:5 comes after chr7:9'):
        vcf_to_h5(unsorted, str(tmp_path / 's.h5'))
    multi = write_vcf(tmp_path / 'm.vcf', samples, [(4, 'G', ['0|1', '0|0']),
                                                    (5, 'G,T', ['0|1', '0|2'])])
    with pytest.raises(InputError, match='chr7:5 is multi-allelic'):  # in the second block
        vcf_to_h5(multi, str(tmp_path / 'm.h5'), multiallelic='error', block=1)
    assert not os.path.exists(tmp_path / 'm.h5')
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]  # nothing half-written


def test_unphased_skip_counts(tmp_path):
    vcf = write_vcf(tmp_path / 'u.vcf', ['s1'], [(5, 'G', ['0/1']), (6, 'G', ['0|1'])])
    summary = vcf_to_h5(vcf, str(tmp_path / 'u.h5'), unphased='skip')
    assert summary['skipped']['unphased'] == 1 and summary['variants'] == 1


def test_samples_missing_from_table(panel, tmp_path):
    vcf, _ = panel
    table = write_table(tmp_path / 'partial.tsv', [('s1', 'EUR'), ('s3', 'AFR'),
                                                   ('other', 'EAS')], header=False)
    with pytest.raises(InputError, match=r"partial.tsv: 1 of the 3 samples of .* are not in "
                                         r"the table, e.g. \['s2'\]"):
        vcf_to_h5(vcf, str(tmp_path / 'x.h5'), table)
    summary = vcf_to_h5(vcf, str(tmp_path / 'x.h5'), table, unlabelled='skip')
    assert open_genotypes(tmp_path / 'x.h5').samples == ['s1_A', 's1_B', 's3_A', 's3_B']
    assert summary['unlabelled_samples_skipped'] == 1
    assert summary['table_samples_not_in_vcf'] == 1


def test_sample_table_errors(tmp_path):
    good = write_table(tmp_path / 'g.tsv', [('a', 'X'), ('b', 'Y')])
    assert read_sample_table(good) == {'a': 'X', 'b': 'Y'}
    bad = tmp_path / 'b.tsv'
    bad.write_text('a\tX\nb\tY\textra\n')
    with pytest.raises(InputError, match=r'b.tsv, line 2: expected two tab-separated columns'):
        read_sample_table(bad)
    twice = tmp_path / 't.tsv'
    twice.write_text('a\tX\na\tY\n')
    with pytest.raises(InputError, match=r"line 2: sample 'a' is listed twice"):
        read_sample_table(twice)


def test_prepare_vcf_command(panel, tmp_path, capsys):
    vcf, table = panel
    out = str(tmp_path / 'cli.h5')
    assert prepare_main(['vcf', vcf, '--samples', table, '-o', out]) == 0
    printed = capsys.readouterr().out
    assert '6 haplotypes x 3 variants on chromosome chr7' in printed
    assert '1 (multiallelic)' in printed and os.path.exists(out + '.summary.json')
    assert prepare_main(['vcf', str(tmp_path / 'none.vcf'), '-o', out]) == 1
    error = capsys.readouterr().err
    assert 'none.vcf: no such VCF/BCF file' in error and 'Traceback' not in error


def test_open_genotypes_rejects_other_files(tmp_path):
    path = tmp_path / 'other.h5'
    with h5py.File(path, 'w') as f:
        f['data'] = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r'other.h5: a genotype file needs datasets data, '
                                         r'positions and samples; missing \[.positions., '
                                         r'.samples.\]'):
        open_genotypes(path)


def test_alignment_by_position():
    alignment = Alignment([10, 20, 30, 40, 55], [5, 20, 40, 50, 55, 60])
    assert alignment.index.tolist() == [-1, 1, 3, -1, 4, -1]
    assert alignment.counts == {'model_variants': 6, 'query_variants': 5, 'shared': 3,
                                'dropped': 2, 'filled': 3}
    rows = np.array([[1, 2, 3, 4, 5]], np.uint8)
    assert alignment.apply(rows).tolist() == [[MISSING, 2, 4, MISSING, 5, MISSING]]
    assert alignment.apply(rows.astype(np.int16), fill=IGNORE).tolist() == [
        [IGNORE, 2, 4, IGNORE, 5, IGNORE]]
    with pytest.raises(ValueError, match='strictly increasing'):
        Alignment([3, 2], [1])


def test_generator_aligns_query_to_model(tmp_path):
    data = np.array([[0, 1, 1], [1, 0, MISSING]], np.uint8)
    label = np.array([[0, 0, 1], [1, 1, 1]])
    path = tmp_path / 'q.h5'
    write_genotypes(path, data, [10, 20, 30], ['h1', 'h2'], '1', ['EUR', 'AFR'], label)
    # the model knows AFR as 0 and EUR as 1: labels are matched by name
    gen = GenotypeBatchGenerator(str(path), positions=[5, 20, 30, 40],
                                 ancestries=['AFR', 'EUR'])
    x, y = next(iter(gen))
    assert x.tolist() == [[MISSING, 1, 1, MISSING], [MISSING, 0, MISSING, MISSING]]
    assert y.tolist() == [[IGNORE, 1, 0, IGNORE], [IGNORE, 0, 0, IGNORE]]
    assert gen.alignment.counts['dropped'] == 1 and gen.alignment.counts['filled'] == 2
    with pytest.raises(ValueError, match=r"q.h5: labels name ancestries \['EUR'\] the model "
                                         r"does not know"):
        GenotypeBatchGenerator(str(path), ancestries=['AFR', 'EAS'])


def test_admixture_breakpoints_follow_poisson_mean():
    admix = Admixer()  # deepLAI: generations 1 and 2, 2 + Poisson(2.86 g) breakpoints
    rng = np.random.default_rng(1)
    n = 3000
    counts = {1: [], 2: []}
    x = np.arange(n)[:, None].repeat(4, axis=1)
    _, _, segments = admix(x, x.copy(), rng, return_segments=True)
    assert len(segments) == admix.n_new(n) == 2 * (n // 3)
    for i, (breaks, founders) in enumerate(segments):
        counts[1 if i < n // 3 else 2].append(len(breaks))
        assert len(founders) == len(breaks) + 1
    for g in (1, 2):
        values = np.array(counts[g])
        mean, se = 2 + 2.86 * g, np.sqrt(2.86 * g / len(values))
        assert abs(values.mean() - mean) < 4 * se, (g, values.mean(), mean)
        assert values.min() >= 2
        # Poisson: variance equals the mean of the Poisson part
        assert abs(values.var() - 2.86 * g) < 0.25 * 2.86 * g


def test_admixture_labels_follow_segments():
    rng = np.random.default_rng(5)
    n, length = 12, 50
    x = np.repeat(np.arange(n, dtype=np.uint8)[:, None], length, axis=1)  # row id everywhere
    y = np.repeat(np.arange(n)[:, None] % 3, length, axis=1)
    new_x, new_y, segments = Admixer(rate=3.0)(x, y, rng, return_segments=True)
    np.testing.assert_array_equal(new_x[:n], x)
    for row, (breaks, founders) in zip(range(n, len(new_x)), segments):
        edges = np.concatenate([[0], breaks, [length]])
        for founder, start, stop in zip(founders, edges[:-1], edges[1:]):
            assert (new_x[row, start:stop] == founder).all()
        # every variant's label is its founder's
        np.testing.assert_array_equal(new_y[row], new_x[row].astype(np.int64) % 3)


def test_admixture_genetic_map_places_breakpoints_by_distance():
    # the first 10 variants span 90 cM, the other 90 variants 10 cM
    cm = np.concatenate([np.linspace(0, 90, 10, endpoint=False), np.linspace(90, 100, 90)])
    breaks = Admixer(genetic_map=cm).breakpoints(np.random.default_rng(0), 100, 4000)
    share = np.mean(breaks <= 10)
    assert 0.87 < share < 0.93
    with pytest.raises(ValueError, match='non-decreasing cM'):
        Admixer(genetic_map=[3.0, 1.0])


def test_read_genetic_map(tmp_path):
    two = tmp_path / 'two.txt'
    two.write_text('position\tcM\n100\t0.0\n300\t2.0\n')
    np.testing.assert_allclose(read_genetic_map(two, [50, 100, 200, 250, 400]),
                               [0.0, 0.0, 1.0, 1.5, 2.0])
    plink = tmp_path / 'map.map'
    plink.write_text('1 rs1 0.5 1000\n1 rs2 1.5 2000\n')
    np.testing.assert_allclose(read_genetic_map(plink, [1500]), [1.0])
    bad = tmp_path / 'bad.txt'
    bad.write_text('100 0.0\n200 x\n')
    with pytest.raises(ValueError, match=r'bad.txt, line 2: expected "position cM"'):
        read_genetic_map(bad, [1])


def _panel_file(tmp_path, n_samples=24, n_variants=300, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 2, (2 * n_samples, n_variants)).astype(np.uint8)
    labels = np.repeat(np.arange(n_samples) % 3, 2)
    samples = [f's{i}_{h}' for i in range(n_samples) for h in 'AB']
    path = str(tmp_path / 'panel.h5')
    write_genotypes(path, data, np.arange(n_variants) * 10 + 1, samples, '1',
                    ['A', 'B', 'C'], labels)
    return path, data, labels


def test_generator_serves_every_row_once_shuffled_and_resumes(tmp_path):
    path, data, labels = _panel_file(tmp_path)
    rows = np.arange(0, 48, 2)  # a subset: the first haplotype of each sample
    gen = GenotypeBatchGenerator(path, batch_size=5, rows=rows, shuffle=True, seed=3,
                                 buffer_mb=0.005)  # windows of a few blocks
    seen = np.concatenate([x for x, _ in gen])
    assert len(seen) == len(rows) and len(gen) == 5
    found = sorted(np.flatnonzero((data == s).all(axis=1))[0] for s in seen)
    assert found == rows.tolist()
    assert not np.array_equal(seen, data[rows])  # shuffled
    for x, y in gen:
        assert y.shape == x.shape and y.dtype == np.int16
    # resume: the state after epoch 2 gives epoch 3 exactly
    state = gen.get_state()
    third = [x for x, _ in gen]
    other = GenotypeBatchGenerator(path, batch_size=5, rows=rows, shuffle=True, seed=99,
                                   buffer_mb=0.005)
    other.set_state(state)
    for a, b in zip(third, (x for x, _ in other)):
        np.testing.assert_array_equal(a, b)


def test_generator_admixes_on_the_fly_seeded(tmp_path):
    path, _, _ = _panel_file(tmp_path)
    make = lambda seed: GenotypeBatchGenerator(path, batch_size=9, shuffle=True, admix=True,
                                               seed=seed)
    a, b = list(make(4)), list(make(4))
    x, y = a[0]
    assert x.shape[0] == 9 + 2 * 3  # deepLAI: a third of the batch per generation
    # each admixed variant carries the allele and label of one of the batch's founders there
    for row in range(9, 15):
        match = (x[:9] == x[row]) & (y[:9] == y[row])
        assert match.any(axis=0).all()
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_split_panel_holds_out_whole_samples(tmp_path):
    path, _, labels = _panel_file(tmp_path)
    info = open_genotypes(path)
    train, val = split_panel(info, 0.25, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 48
    assert all(r ^ 1 in val for r in val)  # both haplotypes of a sample
    assert sorted(np.bincount(labels[val])) == [4, 4, 4]  # 2 of 8 samples per ancestry
    gen = admixed_validation(path, val, n_haplotypes=30, seed=0)
    again = admixed_validation(path, val, n_haplotypes=30, seed=0)
    np.testing.assert_array_equal(gen.X, again.X)
    assert gen.X.shape == (30, 300) and gen.Y.shape == (30, 300)


def test_tracts_and_plot(tmp_path):
    calls = np.array([[0, 0, 1, 1, 1, 0], [2, 2, 2, 2, 2, 2]])
    positions = np.array([5, 9, 20, 31, 40, 52])
    assert runs(calls[0]) == [(0, 1, 0), (2, 4, 1), (5, 5, 0)]
    rows = tracts(calls, positions, ['h1', 'h2'], ['AFR', 'EUR', 'EAS'], 'chr2')
    assert rows == [('h1', 'chr2', 5, 9, 'AFR', 2), ('h1', 'chr2', 20, 40, 'EUR', 3),
                    ('h1', 'chr2', 52, 52, 'AFR', 1), ('h2', 'chr2', 5, 52, 'EAS', 6)]
    path = tmp_path / 't.tsv'
    assert write_tracts(path, calls, positions, ['h1', 'h2'], ['AFR', 'EUR', 'EAS']) == 4
    lines = path.read_text().splitlines()
    assert lines[0] == 'haplotype\tchromosome\tstart\tend\tancestry\tn_variants'
    assert lines[2] == 'h1\t\t20\t40\tEUR\t3'
    png = plot_tracts(str(tmp_path / 't.png'), calls, positions, ['h1', 'h2'],
                      ['AFR', 'EUR', 'EAS'], truth=calls)
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_naive_bayes_calls_diagnostic_windows():
    # ancestry 0 carries allele 0 and ancestry 1 allele 1 at every variant, with 10 % noise
    rng = np.random.default_rng(0)
    ref_labels = np.repeat([0, 1], 50)
    ref = (ref_labels[:, None] ^ (rng.random((100, 40)) < 0.1)).astype(np.uint8)
    truth = np.repeat([[0] * 20 + [1] * 20], 5, axis=0)
    query = (truth ^ (rng.random((5, 40)) < 0.1)).astype(np.uint8)
    query[0, 3] = MISSING
    nb = WindowedNaiveBayes(2).update(ref, ref_labels)
    np.testing.assert_array_equal(nb.predict(query, 10), truth)
