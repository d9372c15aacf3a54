"""prepare.py: FASTA / BED + genome -> one-hot HDF5, checked by decoding against the inputs."""
import gzip
import importlib
import json
import os
import subprocess
import sys
import tracemalloc

import h5py
import numpy as np
import pytest

from dlutil._program import DEBUG_HINT
from dlutil.prepare import cli as prepare_cli
from dlutil.prepare import sequences as prepare
from batch_generator import H5pyBatchGenerator

SPLITS = ('train', 'valid', 'test')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPLEMENT = str.maketrans('ACGTNRYSWKMBDHV', 'TGCANYRSWMKVHDB')


def revcomp(seq):
    return seq.translate(COMPLEMENT)[::-1]


def random_seqs(n, length, seed=0, letters='ACGTacgtNRYnUu'):
    rng = np.random.default_rng(seed)
    return [''.join(rng.choice(list(letters), length)) for _ in range(n)]


def expected(seq):
    """What decode() gives back under the default encoding: upper case, IUPAC codes as N."""
    return ''.join(c if c in 'ACGT' else 'T' if c == 'U' else 'N' for c in seq.upper())


def write_fasta(path, records, width=None, compress=False):
    text = ''
    for name, seq in records:
        lines = [seq] if width is None else [seq[i:i + width] for i in range(0, len(seq), width)]
        text += f'>{name} some description\n' + '\n'.join(lines) + '\n'
    if compress:
        with gzip.open(path, 'wt') as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def write_tsv(path, header, rows):
    path.write_text('\n'.join('\t'.join(map(str, r)) for r in [header] + rows) + '\n')
    return path


def read(path):
    with h5py.File(path, 'r') as f:
        out = {key: f[key][()] for key in f}
        out['attrs'] = dict(f.attrs)
    out['name'] = [n.decode() for n in out['name']]
    return out


# -- encoding ---------------------------------------------------------------------------------
def test_one_hot_rows_and_iupac():
    x = prepare.one_hot('ACGTUNRacgtn')
    assert x.shape == (4, 12) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :5], [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0],
                                             [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]])  # U is T
    assert (x[:, 5] == 0.25).all() and (x[:, 6] == 0.25).all() and (x[:, 11] == 0.25).all()
    np.testing.assert_array_equal(x[:, 7:11], np.eye(4))
    r = prepare.one_hot('RYBN', iupac='fractional')
    np.testing.assert_allclose(r[:, 0], [0.5, 0, 0.5, 0])  # R = A/G
    np.testing.assert_allclose(r[:, 1], [0, 0.5, 0, 0.5])  # Y = C/T
    np.testing.assert_allclose(r[:, 2], [0, 1 / 3, 1 / 3, 1 / 3])  # B = C/G/T
    np.testing.assert_allclose(r[:, 3], [0.25] * 4)
    with pytest.raises(ValueError, match=r"character '-' at position 3"):
        prepare.one_hot('AC-T')


def test_decode_inverts_and_is_reverse_complement_safe():
    for seq in random_seqs(20, 50, letters='ACGTN') + ['ACGTRYSWKMBDHVN']:
        x = prepare.one_hot(seq, iupac='fractional')
        assert prepare.decode(x) == seq
        assert prepare.decode(x[::-1, ::-1]) == revcomp(seq)  # what the RC augmentation serves
        assert prepare.decode(x[:, None, :]) == seq
    assert prepare.decode(prepare.one_hot('ACRYN')) == 'ACNNN'
    with pytest.raises(ValueError, match=r'shape \(3, 5\)'):
        prepare.decode(np.zeros((3, 5)))


# -- FASTA ------------------------------------------------------------------------------------
@pytest.mark.parametrize('style', ['plain', 'multiline', 'gzip'])
def test_fasta_round_trip_with_tsv_labels(tmp_path, style):
    seqs = random_seqs(30, 40)
    names = [f'seq{i}' for i in range(30)]
    fasta = write_fasta(tmp_path / ('in.fa.gz' if style == 'gzip' else 'in.fa'),
                        zip(names, seqs), width=None if style == 'plain' else 7,
                        compress=style == 'gzip')
    values = np.random.default_rng(1).normal(size=(30, 2)).round(3)
    order = np.random.default_rng(2).permutation(30)  # the TSV in another order
    tsv = write_tsv(tmp_path / 'labels.tsv', ['name', 'a', 'b'],
                    [[names[i], *values[i]] for i in order])
    summary = prepare.prepare_fasta(fasta, tmp_path / 'out', labels=tsv, split='none')
    out = read(tmp_path / 'out' / 'all.h5')
    assert out['name'] == names
    assert [prepare.decode(x) for x in out['data']] == [expected(s) for s in seqs]
    assert out['data'].shape == (30, 4, 40) and out['label'].dtype == np.float32
    np.testing.assert_allclose(out['label'], values, rtol=1e-6)
    assert summary['task'] == 'regression' and list(out['attrs']['targets']) == ['a', 'b']
    assert summary == json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['files']['all']['labels']['mean']['a'] == pytest.approx(values[:, 0].mean(),
                                                                           abs=1e-5)
    assert sorted(os.listdir(tmp_path / 'out')) == ['all.h5', 'summary.json']  # no temporaries


def test_one_fasta_per_class(tmp_path):
    paths = [write_fasta(tmp_path / f'{name}.fa', [(f'{name}{i}', s) for i, s in
                                                   enumerate(random_seqs(n, 12, seed=n))])
             for name, n in (('neg', 5), ('weak', 3), ('pos', 4))]
    summary = prepare.prepare_fasta(paths, tmp_path / 'out', one_per_class=True, split='none')
    out = read(tmp_path / 'out' / 'all.h5')
    assert out['label'].dtype == np.int64
    assert out['label'].tolist() == [0] * 5 + [1] * 3 + [2] * 4
    assert list(out['attrs']['classes']) == ['neg', 'weak', 'pos']
    assert summary['files']['all']['labels'] == {'counts': {'neg': 5, 'weak': 3, 'pos': 4}}


def test_training_rows_are_written_in_a_seeded_shuffled_order(tmp_path):
    """One FASTA per class used to give a train.h5 sorted by class."""
    seqs = {name: random_seqs(300, 20, seed=k, letters='ACGT')
            for k, name in enumerate(('neg', 'pos'))}
    paths = [write_fasta(tmp_path / f'{name}.fa', [(f'{name}{i}', s) for i, s in
                                                   enumerate(seqs[name])])
             for name in ('neg', 'pos')]
    orders = {}
    for run, seed, shuffle_mb in (('a', 0, 0.01), ('b', 0, 64), ('c', 1, 64), ('d', 0, 0)):
        summary = prepare.prepare_fasta(paths, tmp_path / run, one_per_class=True, seed=seed,
                                        shuffle_mb=shuffle_mb, valid=0.2, test=0)
        out = read(tmp_path / run / 'train.h5')
        orders[run] = out['name']
        for name, x, y in zip(out['name'], out['data'], out['label']):  # rows stay whole
            klass = 'pos' if name.startswith('pos') else 'neg'
            assert prepare.decode(x) == seqs[klass][int(name[3:])] and y == (klass == 'pos')
        valid = read(tmp_path / run / 'valid.h5')['name']
        assert valid == sorted(valid, key=lambda n: (n[:3] == 'pos', int(n[3:])))  # as read
        assert summary['files']['train']['order'] == ('input' if run == 'd' else
                                                      f'shuffled (--seed {seed})')
    assert orders['a'] == orders['b']  # the order depends on the seed, not on the memory
    assert orders['c'] != orders['a'] and sorted(orders['c']) != sorted(orders['a'])
    assert orders['d'] == sorted(orders['d'], key=lambda n: (n[:3] == 'pos', int(n[3:])))
    labels = np.array([n.startswith('pos') for n in orders['a']])
    n, p = len(labels), labels.mean()
    runs = 1 + np.count_nonzero(labels[1:] != labels[:-1])
    expected = 1 + 2 * n * p * (1 - p)  # runs of a random order (Wald-Wolfowitz)
    assert abs(runs - expected) < 4 * np.sqrt(2 * n * p * (1 - p)), (runs, expected)
    assert list(sorted(orders['a'])) == sorted(orders['d'])


def test_binary_and_multilabel_tasks_from_tsv(tmp_path):
    fasta = write_fasta(tmp_path / 'in.fa', [(f's{i}', 'ACGT') for i in range(6)])
    one = write_tsv(tmp_path / 'one.tsv', ['id', 'bound'], [[f's{i}', i % 2] for i in range(6)])
    many = write_tsv(tmp_path / 'many.tsv', ['id', 'x', 'y', 'z'],
                     [[f's{i}', i % 2, 1, 0] for i in range(6)])
    prepare.prepare_fasta(fasta, tmp_path / 'one', labels=one, split='none')
    prepare.prepare_fasta(fasta, tmp_path / 'many', labels=many, split='none')
    out_one, out_many = read(tmp_path / 'one' / 'all.h5'), read(tmp_path / 'many' / 'all.h5')
    assert out_one['label'].dtype == np.int64 and out_one['attrs']['task'] == 'class'
    assert out_many['label'].shape == (6, 3) and out_many['attrs']['task'] == 'multilabel'
    summary = json.loads((tmp_path / 'many' / 'summary.json').read_text())
    assert summary['files']['all']['labels'] == {'positives': {'x': 3, 'y': 6, 'z': 0}}
    three = write_tsv(tmp_path / 'three.tsv', ['id', 'kind'], [[f's{i}', i % 3] for i in range(6)])
    summary = prepare.prepare_fasta(fasta, tmp_path / 'three', labels=three, split='none',
                                    task='class', class_names=['a', 'b', 'c'])
    assert read(tmp_path / 'three' / 'all.h5')['label'].tolist() == [0, 1, 2, 0, 1, 2]
    assert summary['files']['all']['labels'] == {'counts': {'a': 2, 'b': 2, 'c': 2}}
    half = write_tsv(tmp_path / 'half.tsv', ['id', 'y'], [[f's{i}', i / 2] for i in range(6)])
    with pytest.raises(prepare.InputError, match=r'--task class needs class indices 0, 1, 2, '
                                                 r'\.\.\.: .*half.tsv, line 3 has 0.5'):
        prepare.prepare_fasta(fasta, tmp_path / 'x', labels=half, split='none', task='class')
    assert not (tmp_path / 'x').exists()


def test_random_split_is_seeded_and_covers_every_row(tmp_path):
    fasta = write_fasta(tmp_path / 'in.fa', [(f's{i}', s) for i, s in
                                             enumerate(random_seqs(400, 8))])
    prepare.prepare_fasta(fasta, tmp_path / 'a', valid=0.2, test=0.1, seed=3, chunk_rows=16)
    prepare.prepare_fasta(fasta, tmp_path / 'b', valid=0.2, test=0.1, seed=3)
    names = {s: read(tmp_path / 'a' / f'{s}.h5')['name'] for s in SPLITS}
    assert sorted(sum(names.values(), []), key=lambda n: int(n[1:])) == \
        [f's{i}' for i in range(400)]
    assert 50 < len(names['valid']) < 110 and 20 < len(names['test']) < 65
    assert all(read(tmp_path / 'b' / f'{s}.h5')['name'] == names[s] for s in SPLITS)


def test_length_resizes_around_the_centre(tmp_path):
    fasta = write_fasta(tmp_path / 'in.fa', [('long', 'AAACCGGTTT'), ('short', 'CGT')])
    prepare.prepare_fasta(fasta, tmp_path / 'out', length=6, split='none')
    out = read(tmp_path / 'out' / 'all.h5')
    # c = n // 2, window [c - 3, c + 3): 'AAACCGGTTT'[2:8]; for 'CGT' [-2, 4): NN + CGT + N
    assert [prepare.decode(x) for x in out['data']] == ['ACCGGT', 'NNCGTN']


def test_fasta_chrom_split_reads_the_interval_in_the_names(tmp_path):
    records = [('chr1:0-8', 'ACGTACGT'), ('peak::chr2:5-13(+)', 'CCCCGGGG'),
               ('chr3:1-9', 'TTTTAAAA'), ('chr1:20-28', 'GGGGTTTT')]
    fasta = write_fasta(tmp_path / 'in.fa', records)
    prepare.prepare_fasta(fasta, tmp_path / 'out', split='chrom', valid_chroms=['chr2'],
                          test_chroms=['chr3'])
    assert read(tmp_path / 'out' / 'train.h5')['name'] == ['chr1:0-8', 'chr1:20-28']
    assert read(tmp_path / 'out' / 'valid.h5')['name'] == ['peak::chr2:5-13(+)']
    assert read(tmp_path / 'out' / 'test.h5')['name'] == ['chr3:1-9']


# -- BED + genome -----------------------------------------------------------------------------
@pytest.fixture
def genome(tmp_path):
    rng = np.random.default_rng(7)
    chroms = {name: ''.join(rng.choice(list('ACGT'), size)) for name, size in
              (('chr1', 4000), ('chr2', 2500), ('chr3', 3000))}
    chroms['chr1'] = chroms['chr1'][:1000] + 'NNNNNryk' + chroms['chr1'][1008:]
    write_fasta(tmp_path / 'genome.fa', chroms.items(), width=60)
    return tmp_path / 'genome.fa', chroms


def write_bed(path, rows, header=True):
    lines = ['track name=peaks'] + (['#chrom\tstart\tend\tname\tCTCF\tsignal'] if header else [])
    path.write_text('\n'.join(lines + ['\t'.join(map(str, r)) for r in rows]) + '\n')
    return path


BED_ROWS = [('chr1', 900, 1100, 'a', 1, 2.5), ('chr2', 1000, 1001, 'b', 0, 0.5),
            ('chr3', 1500, 1800, '.', 1, 7.0), ('chr1', 2000, 2300, 'd', 0, 1.0),
            ('chr1', 20, 60, 'start', 1, 3.0), ('chr2', 2450, 2500, 'end', 0, 4.0),
            ('chr3', 10, 2990, 'wide', 1, 5.0)]


def window(chroms, chrom, start, end, length):
    """The reference: c = (start + end) // 2, [c - L // 2, c - L // 2 + L), N off the ends."""
    left = (start + end) // 2 - length // 2
    seq = chroms[chrom]
    return ''.join(seq[i] if 0 <= i < len(seq) else 'N' for i in range(left, left + length))


def test_bed_windows_labels_and_chrom_split(tmp_path, genome):
    path, chroms = genome
    bed = write_bed(tmp_path / 'peaks.bed', BED_ROWS)
    summary = prepare.prepare_bed(bed, path, tmp_path / 'out', 200, split='chrom',
                                  valid_chroms=['chr2'], test_chroms=['chr3'])
    for split, chrom in (('train', 'chr1'), ('valid', 'chr2'), ('test', 'chr3')):
        out = read(tmp_path / 'out' / f'{split}.h5')
        rows = [r for r in BED_ROWS if r[0] == chrom]
        if split == 'train':  # written in a shuffled order: compare in the output's order
            rows.sort(key=lambda r: out['name'].index(r[3]))
        assert out['name'] == [r[3] if r[3] != '.' else f'{r[0]}:{r[1]}-{r[2]}' for r in rows]
        assert [prepare.decode(x) for x in out['data']] == \
            [expected(window(chroms, *r[:3], 200)) for r in rows]
        np.testing.assert_array_equal(out['label'], [r[4:] for r in rows])
        assert (out['end'] - out['start'] == 200).all()
        assert list(out['attrs']['targets']) == ['CTCF', 'signal']
    assert summary['task'] == 'regression' and summary['padded'] == {'off a chromosome end': 2}
    # the N run and the lower-case IUPAC letters of chr1 are 0.25 rows
    train = read(tmp_path / 'out' / 'train.h5')
    first = train['data'][train['name'].index('a')]
    assert (first[:, 100:108] == 0.25).all()


def test_bed_off_end_skip_and_one_label_column(tmp_path, genome):
    path, chroms = genome
    bed = write_bed(tmp_path / 'peaks.bed', BED_ROWS, header=False)
    summary = prepare.prepare_bed(bed, path, tmp_path / 'out', 100, label_columns='5',
                                  off_end='skip', split='none', layout='4,1,L')
    out = read(tmp_path / 'out' / 'all.h5')
    kept = [r for r in BED_ROWS if r[3] not in ('start', 'end')]
    assert out['data'].shape == (5, 4, 1, 100) and out['label'].dtype == np.int64
    assert out['label'].tolist() == [r[4] for r in kept]
    assert [prepare.decode(x) for x in out['data']] == \
        [expected(window(chroms, *r[:3], 100)) for r in kept]
    assert summary['skipped'] == {'off a chromosome end': 2} and summary['targets'] == ['column5']


def test_bed_first_pass_reads_labels_in_blocks(tmp_path, genome):
    rows = [('chr1', 10 * i, 10 * i + 5, f'r{i}', int(i == 7) * 2 or i % 2) for i in range(9)]
    bed = write_bed(tmp_path / 'peaks.bed', rows, header=False)
    count, targets, facts, chroms = prepare._scan_bed(str(bed), {'chr1': 4000}, '5-',
                                                      block_rows=4)
    assert (count, targets, chroms) == (9, ['column5'], {'chr1'})
    assert facts.not_binary == f'{bed}, line {7 + 2} has 2' and facts.not_class is None
    with pytest.raises(prepare.InputError, match=r'multilabel needs 0/1 labels: .*line 9 has 2'):
        prepare.prepare_bed(bed, genome[0], tmp_path / 'out', 10, task='multilabel')


@pytest.mark.parametrize('layout, shape', [('4,L', (4, 64)), ('4,1,L', (4, 1, 64))])
def test_h5py_batch_generator_reads_the_output(tmp_path, genome, layout, shape):
    path, _ = genome
    rng = np.random.default_rng(0)
    rows = [('chr1', s, s + 64, f'r{s}', int(rng.integers(2))) for s in range(100, 3800, 37)]
    bed = write_bed(tmp_path / 'peaks.bed', rows, header=False)
    prepare.prepare_bed(bed, path, tmp_path / 'out', 64, layout=layout, chunk_rows=32,
                        valid=0.25, test=0)
    assert not os.path.exists(tmp_path / 'out' / 'test.h5')
    train = H5pyBatchGenerator(str(tmp_path / 'out' / 'train.h5'), 16, shuffle=True,
                               reverse_complement=True)
    valid = H5pyBatchGenerator(str(tmp_path / 'out' / 'valid.h5'), 16)
    assert train.n_samples + valid.n_samples == len(rows)
    for generator in (train, valid):
        batches = list(generator)
        assert all(x.shape[1:] == shape and len(x) == len(y) for x, y in batches)
        assert sum(len(x) for x, _ in batches) == generator.n_samples
        assert batches[0][1].dtype == np.int64


# -- memory -----------------------------------------------------------------------------------
def test_memory_stays_bounded_while_streaming(tmp_path, genome):
    rng = np.random.default_rng(0)
    n, length = 3000, 500  # 24 MB of one-hot data
    fasta = tmp_path / 'big.fa'
    with open(fasta, 'w') as handle:
        for i in range(n):
            handle.write(f'>s{i}\n' + ''.join(rng.choice(list('ACGT'), length)) + '\n')
    tsv = write_tsv(tmp_path / 'big.tsv', ['name', 'y'], [[f's{i}', i % 2] for i in range(n)])
    bed = write_bed(tmp_path / 'big.bed', [('chr3', s, s + 1, f'i{s}', 1, 0.5) for s in
                                           rng.integers(0, 3000, n)])
    path, _ = genome
    importlib.import_module('pyfaidx')  # imported before measuring: its code is not data
    # shuffle_mb: the memory that writes train.h5 in a random order (64 MB by default)
    for run in (lambda: prepare.prepare_fasta(fasta, tmp_path / 'f', labels=tsv, chunk_rows=64,
                                              shuffle_mb=1),
                lambda: prepare.prepare_bed(bed, path, tmp_path / 'b', length, chunk_rows=64,
                                            shuffle_mb=1)):
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 4e6, peak  # a few chunks of 64 rows (128 kB each), not the 24 MB output
    assert sum(read(tmp_path / 'b' / f'{s}.h5')['data'].shape[0] for s in SPLITS) == n


# -- bad input: a message naming the file and line, exit code 1, no traceback -----------------
def bad_inputs(tmp_path, genome_path):
    fa = write_fasta(tmp_path / 'a.fa', [('s1', 'ACGTACGT'), ('s2', 'ACGTAC'), ('s3', 'ACGT')])
    same = write_fasta(tmp_path / 'same.fa', [('s1', 'ACGT'), ('s2', 'ACXT')])
    tsv = write_tsv(tmp_path / 'l.tsv', ['name', 'y'], [['s1', 1], ['s2', 0]])
    extra = write_tsv(tmp_path / 'extra.tsv', ['name', 'y'], [['s1', 1], ['s2', 0], ['zz', 1]])
    nan = write_tsv(tmp_path / 'nan.tsv', ['name', 'y'], [['s1', 1], ['s2', 'abc']])
    empty = tmp_path / 'empty.fa'
    empty.write_text('\n')
    bed = write_bed(tmp_path / 'bad.bed', [('chr1', 10, 20, 'a', 1, 1), ('chr9', 5, 9, 'b', 0, 1)])
    bed1 = write_bed(tmp_path / 'one.bed', [('1', 10, 20, 'a', 1, 1)])
    bedx = write_bed(tmp_path / 'x.bed', [('chr1', 10, 20, 'a', 'high', 1)])
    nobed = write_bed(tmp_path / 'none.bed', [])
    good = write_bed(tmp_path / 'good.bed', [('chr1', 10, 20, 'a', 1, 1)])
    inf = write_tsv(tmp_path / 'inf.tsv', ['name', 'y'], [['s1', 'inf'], ['s2', 0]])
    chroms = write_fasta(tmp_path / 'chroms.fa', [('chr1:0-4', 'ACGT'), ('chr2:0-4', 'ACGT')])
    truncated = tmp_path / 'cut.fa.gz'
    truncated.write_bytes(gzip.compress(b'>s1\nACGT\n' * 200)[:40])
    gzipped = tmp_path / 'genome.fa.gz'
    gzipped.write_bytes(gzip.compress(genome_path.read_bytes()))
    g = ['-g', str(genome_path), '-L', '50']
    return [
        (['fasta', fa, '--chunk-rows', '1'], "a.fa, record 's2' (line 3): sequence has length 6 "
                                             "but the first has 8"),
        (['fasta', same, '--labels', tsv], "same.fa, record 's2' (line 3): the sequence has the "
                                           "character 'X' at position 3"),
        (['fasta', same, '--labels', extra], "extra.tsv, line 4: sequence 'zz' is in no FASTA"),
        (['fasta', fa, '--labels', tsv, '-L', '4'], "a.fa, record 's3' (line 5): no row for 's3'"),
        (['fasta', same, '--labels', nan], "nan.tsv, line 3, column 2 (y): 'abc' is not a number"),
        (['fasta', empty], "empty.fa: no FASTA records"),
        (['fasta', same, '--split', 'chrom', '--test-chroms', 'chr1'],
         "same.fa, record 's1' (line 1): --split chrom needs record names that carry"),
        (['bed', bed, *g], "bad.bed, line 4: chromosome 'chr9' is not in the genome (3 "
                           "sequences: chr1, chr2, chr3)"),
        (['bed', bed1, *g], "one.bed, line 3: chromosome '1' is not in the genome (3 sequences: "
                            "chr1, chr2, chr3); did you mean chr1?"),
        (['bed', bedx, *g], "x.bed, line 3, column 5 (CTCF): 'high' is not a number"),
        (['bed', nobed, *g], "none.bed: no intervals"),
        (['bed', bed, *g, '--split', 'chrom', '--valid-chroms', 'chr8'],
         "--valid-chroms/--test-chroms: chromosome 'chr8' is not in the genome"),
        (['bed', good, *g, '--split', 'chrom', '--test-chroms', 'chr2'],
         'the test split would be empty: no interval of '),
        (['fasta', same, '--labels', inf], "inf.tsv, line 2, column 2 (y): 'inf'; labels must be "
                                           "finite numbers"),
        (['fasta', chroms, '--split', 'chrom', '--valid-chroms', 'chr2,chr7', '--test-chroms',
          'chr9'], 'the test split is empty: no row is on --test-chroms chr9'),
        (['fasta', same, '--task', 'class'], '--task class needs labels, and there are none'),
        (['fasta', truncated], 'cut.fa.gz: cannot read it'),
        (['bed', bed, '-g', gzipped, '-L', '50'], 'genome.fa.gz: gzip-compressed; indexed access '
                                                  'needs a plain FASTA (gunzip it)'),
    ]


def test_bad_inputs_give_a_message_and_no_output(tmp_path, genome, capsys):
    for argv, message in bad_inputs(tmp_path, genome[0]):
        out = tmp_path / 'out'
        code = prepare_cli.main([str(a) for a in argv] + ['-o', str(out)])
        err = capsys.readouterr().err
        assert code == 1, argv
        assert message in err, (argv, err)
        lines = err.strip().splitlines()  # one line (and the --debug hint where it helps)
        assert lines[0].startswith('error: ') and lines[1:] in ([], [DEBUG_HINT]), err
        assert not out.exists()  # nothing partial, not even the folder


def test_cli_subprocess_exit_code_and_debug(tmp_path, genome):
    argv, message = bad_inputs(tmp_path, genome[0])[0]
    command = [sys.executable, '-m', 'dlutil.prepare', *map(str, argv), '-o', str(tmp_path / 'out')]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1 and message in done.stderr and 'Traceback' not in done.stderr
    done = subprocess.run(command + ['--debug'], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 1 and 'Traceback' in done.stderr and 'InputError' in done.stderr
    fa = write_fasta(tmp_path / 'ok.fa', [(f's{i}', 'ACGT') for i in range(10)])
    done = subprocess.run([sys.executable, '-m', 'dlutil.prepare', 'fasta', str(fa), '--no-split', '-o',
                           str(tmp_path / 'ok')], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0 and 'all.h5: 10 rows' in done.stdout, done.stderr


@pytest.mark.parametrize('argv', [['--help'], ['fasta', '--help'], ['bed', '--help']])
def test_help_explains_with_examples(argv, capsys):
    with pytest.raises(SystemExit) as done:
        prepare_cli.main(argv)
    text = capsys.readouterr().out
    assert done.value.code == 0 and 'examples:' in text and 'H5pyBatchGenerator' in text


def test_argument_problems_are_reported_together(tmp_path):
    fa = write_fasta(tmp_path / 'a.fa', [('s1', 'ACGT')])
    with pytest.raises(prepare.InputError) as error:
        prepare.prepare_fasta(fa, tmp_path / 'out', valid=0.6, test=0.5, layout='L,4',
                              chunk_rows=0)
    assert all(text in str(error.value) for text in ('leave no training rows', '--layout',
                                                     '--chunk-rows'))
    with pytest.raises(TypeError, match="did you mean 'valid_chroms'"):
        prepare.prepare_fasta(fa, tmp_path / 'out', valid_chrom=['chr1'])


def test_stale_outputs_are_refused(tmp_path):
    fa = write_fasta(tmp_path / 'a.fa', [(f's{i}', 'ACGT') for i in range(20)])
    prepare.prepare_fasta(fa, tmp_path / 'out', split='none')
    with pytest.raises(prepare.InputError, match='all.h5 from an earlier run'):
        prepare.prepare_fasta(fa, tmp_path / 'out', valid=0.3, test=0.3)


def test_prepare_vcf_takes_a_folder_and_the_older_file_form_with_a_notice(tmp_path, capsys):
    vcf = tmp_path / 'ref.vcf.gz'
    text = ('##fileformat=VCFv4.2\n##contig=<ID=chr7,length=1000>\n'
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n'
            'chr7\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\n'
            'chr7\t200\t.\tA\tC\t.\tPASS\t.\tGT\t1|0\t0|0\n')
    with gzip.open(vcf, 'wt') as handle:
        handle.write(text)
    assert prepare_cli.main(['vcf', str(vcf), '-o', str(tmp_path / 'data')]) == 0
    out = capsys.readouterr()
    assert sorted(os.listdir(tmp_path / 'data')) == ['ref.h5', 'ref.summary.json']
    assert 'notice' not in out.err and str(tmp_path / 'data' / 'ref.summary.json') in out.out
    with h5py.File(tmp_path / 'data' / 'ref.h5') as f:
        assert f['data'].shape == (4, 2)
    assert prepare_cli.main(['vcf', str(vcf), '-o', str(tmp_path / 'old' / 'panel.h5')]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith('notice: -o ') and '\n' not in err and 'takes a folder' in err
    assert sorted(os.listdir(tmp_path / 'old')) == ['panel.h5', 'panel.h5.summary.json']


@pytest.mark.parametrize('command', ['fasta', 'bed', 'vcf'])
def test_every_subcommand_has_compression_and_debug(command, capsys):
    with pytest.raises(SystemExit):
        prepare_cli.main([command, '--help'])
    text = capsys.readouterr().out
    assert '--compression {none,lzf,gzip}' in text and '--debug' in text
