"""fasta_data: pysster's FASTA semantics, checked against one-hot arrays written out by hand."""
import gzip

import numpy as np
import pytest

from batch_generator import MatrixBatchGenerator
from dlutil.sequences.fasta_data import (DNA, PROTEIN, RNA, FastaData, channel_names, decode, encode,
                        infer_alphabet, letter_counts, prediction_generator, read_records)


def write(path, text):
    path.write_text(text)
    return path


def onehot(sequence, alphabet, length=None):
    """The reference: a (len(alphabet), length) array set letter by letter."""
    x = np.zeros((len(alphabet), length or len(sequence)), dtype=np.float32)
    for i, letter in enumerate(sequence):
        if letter in alphabet:
            x[alphabet.index(letter), i] = 1
    return x


def fasta(records, width=None):
    """FASTA text; ``width`` wraps sequences over several lines."""
    out = []
    for name, seq in records:
        out.append(f'>{name}')
        step = width or max(len(seq), 1)
        out += [seq[i:i + step] for i in range(0, len(seq), step)]
    return '\n'.join(out) + '\n'


def class_files(tmp_path, sizes=(10, 10), length=12, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for c, n in enumerate(sizes):
        seqs = [''.join(rng.choice(list(DNA), length)) for _ in range(n)]
        paths.append(write(tmp_path / f'class{c}.fa', fasta([(f'c{c}_{i}', s)
                                                           for i, s in enumerate(seqs)])))
    return paths


# -- reading ----------------------------------------------------------------------------------
def test_one_class_per_file_in_list_order(tmp_path):
    b = write(tmp_path / 'b.fa', fasta([('b1', 'ACGT'), ('b2', 'GGGG'), ('b3', 'TTTT')]))
    a = write(tmp_path / 'a.fasta', fasta([('a1', 'CCCC'), ('a2', 'AAAA'), ('a3', 'ACGA')]))
    data = FastaData([b, a], split=(0.34, 0.33, 0.33))
    assert not data.multilabel and data.n_classes == 2
    assert data.class_names == ['b', 'a']  # position in the list, not the name
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 1])
    assert data.labels.dtype == np.int64
    assert data.names == ['b1', 'b2', 'b3', 'a1', 'a2', 'a3']
    np.testing.assert_array_equal(data.X[1], onehot('GGGG', DNA))
    assert data.layout == {'n_channels': 4, 'seq_len': 4, 'n_classes': 2, 'multilabel': False,
                           'padding': 'end'}


def test_single_file_is_multilabel_with_classes_in_headers(tmp_path):
    path = write(tmp_path / 'm.fa', fasta([('s0 chr1:5-9 0,2', 'ACGT'), ('s1 1', 'ACGA'),
                                           ('s2 x 2', 'AAAA'), ('s3 0', 'CCCC')]))
    data = FastaData(path, split=(0.5, 0.25, 0.25))
    assert data.multilabel and data.n_classes == 3
    np.testing.assert_array_equal(data.labels, [[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    assert data.labels.dtype == np.float32
    assert data.class_names == ['0', '1', '2']
    assert FastaData([path], split=(0.5, 0.25, 0.25), n_classes=5).labels.shape == (4, 5)


@pytest.mark.parametrize('header', ['s0', 's0 a,b', 's0 -1', 's0 1,,2'])
def test_multilabel_header_without_classes_is_an_error(tmp_path, header):
    path = write(tmp_path / 'm.fa', fasta([('ok 0', 'ACGT'), (header, 'ACGT')]))
    with pytest.raises(ValueError, match=f'header >{header} must end with its classes'):
        FastaData(path)


def test_gzip_multiline_blank_and_comment_lines(tmp_path):
    records = [('r1', 'ACGTACGTAC'), ('r2', 'GGGCCCAAAT'), ('r3', 'TTTTTTTTGA')]
    plain = write(tmp_path / 'x.fa', fasta(records))
    zipped = tmp_path / 'x.fa.gz'
    with gzip.open(zipped, 'wt') as handle:
        handle.write(';comment\n\n' + fasta(records, width=3) + '\n\n')
    named_oddly = tmp_path / 'y.txt'
    named_oddly.write_bytes(zipped.read_bytes())  # gzip is recognised by content
    assert read_records(zipped) == [(n, [s[i:i + 3] for i in range(0, 10, 3)]) for n, s in records]
    for path in (zipped, named_oddly):
        data = FastaData([plain, path], split=(0.34, 0.33, 0.33))
        np.testing.assert_array_equal(data.X[:3], data.X[3:])
        assert data.sequences[3:] == [s for _, s in records]


def test_malformed_files(tmp_path):
    with pytest.raises(ValueError, match='line 1: sequence before the first ">"'):
        read_records(write(tmp_path / 'a.fa', 'ACGT\n>x\nACGT\n'))
    with pytest.raises(ValueError, match='no FASTA records'):
        read_records(write(tmp_path / 'b.fa', '\n'))
    with pytest.raises(ValueError, match='record >x has no sequence'):
        read_records(write(tmp_path / 'c.fa', '>x\n>y\nAC\n'))


# -- encoding ---------------------------------------------------------------------------------
def test_lower_case_unknown_letters_and_padding(tmp_path):
    a = write(tmp_path / 'a.fa', fasta([('a1', 'acgtn'), ('a2', 'ACG'), ('a3', 'ACGTACGT')] * 2))
    b = write(tmp_path / 'b.fa', fasta([('b1', 'TTTTTTTT')] * 6))
    data = FastaData([a, b])
    assert data.X.shape == (12, 4, 8) and data.X.dtype == np.float32
    np.testing.assert_array_equal(data.X[0], onehot('ACGT', DNA, 8))  # N and padding: zeros
    np.testing.assert_array_equal(data.X[1], onehot('ACG', DNA, 8))
    assert data.unknown_letters['sequence'] == {'N': 2}
    assert data.lengths.tolist()[:3] == [5, 3, 8]
    assert data.sequences[0] == 'acgtn'  # as read; the encoding ignores case
    assert FastaData([a, b], length=10).X.shape == (12, 4, 10)
    centred = FastaData([a, b], padding='center')
    np.testing.assert_array_equal(centred.X[1], np.roll(onehot('ACG', DNA, 8), 2, axis=1))
    np.testing.assert_array_equal(centred.X[0], np.roll(onehot('ACGT', DNA, 8), 1, axis=1))
    assert centred.offsets.tolist()[:3] == [1, 2, 0]  # (8 - length) // 2
    assert centred.layout['padding'] == 'center'
    with pytest.raises(ValueError, match="padding must be one of"):
        FastaData([a, b], padding='left')
    with pytest.raises(ValueError, match='longer than length=6'):
        FastaData([a, b], length=6)


def test_wrong_alphabet_is_an_error_not_a_blank_data_set(tmp_path):
    rna = write(tmp_path / 'r.fa', fasta([('r', 'ACGUUGCA')] * 6))
    with pytest.raises(ValueError, match="25% of the sequence letters are 'U'.*'ACGT'"):
        FastaData([rna, rna], alphabet='dna')
    assert FastaData([rna, rna], alphabet='rna').alphabet == RNA


def test_alphabet_inference():
    assert infer_alphabet(letter_counts(['ACGTNNACGT', 'acgt'])) == DNA
    assert infer_alphabet(letter_counts(['ACGUUGCA', 'ACGT'])) == RNA
    assert infer_alphabet(letter_counts(['MKVLAAGIVGLLLA', 'PEPTIDE'])) == PROTEIN
    # a few IUPAC codes in DNA do not make it protein
    assert infer_alphabet(letter_counts(['ACGT' * 10 + 'RY'])) == DNA


def test_protein_and_custom_alphabets(tmp_path):
    p = write(tmp_path / 'p.fa', fasta([('p', 'MKVWY')] * 3))
    q = write(tmp_path / 'q.fa', fasta([('q', 'ACDEF')] * 3))
    data = FastaData([p, q], split=(0.34, 0.33, 0.33))
    assert data.alphabet == PROTEIN and data.X.shape == (6, 20, 5)
    np.testing.assert_array_equal(data.X[0], onehot('MKVWY', PROTEIN))
    assert FastaData([p, q], alphabet='MKVWYACDEF', split=(0.34, 0.33, 0.33)).X.shape[1] == 10


def test_structure_product_alphabet(tmp_path):
    # pysster's sequence-structure records: a sequence line, then a structure line
    path = write(tmp_path / 's.fa', '>s1\nACGU\nHIMS\n>s2\nAAGG\nCCUU\nSSSS\nHHHH\n' * 3)
    data = FastaData([path, path], alphabet='ACGU', structure='HIMS')
    assert data.X.shape == (12, 16, 8)  # the longest record, s2, has 8 positions
    assert data.channel_names[:5] == ['AH', 'AI', 'AM', 'AS', 'CH']
    # channel = sequence index * |structure| + structure index
    expected = np.zeros((16, 8), dtype=np.float32)
    for position, (s, t) in enumerate(zip('ACGU', 'HIMS')):
        expected['ACGU'.index(s) * 4 + 'HIMS'.index(t), position] = 1
    np.testing.assert_array_equal(data.X[0], expected)
    # a wrapped record: the two halves
    assert (data.sequences[1], data.structures[1]) == ('AAGGCCUU', 'SSSSHHHH')
    assert data.decode(data.X[1]) == ('AAGGCCUU', 'SSSSHHHH')
    assert FastaData([path, path], structure=True).structure == 'HIMS'
    dots = write(tmp_path / 'd.fa', '>d\nACGU\n(..)\n' * 3)
    assert FastaData([dots, dots], structure='().').X.shape[1] == 4 * 3
    bad = write(tmp_path / 'bad.fa', '>b\nACGU\nHIM\n')
    with pytest.raises(ValueError, match='record >b must hold a sequence and a structure'):
        FastaData([bad, bad], structure='HIMS')


def test_encode_decode_round_trip():
    X, unknown = encode(['ACGT', 'TTN'], DNA)
    np.testing.assert_array_equal(X[1], onehot('TT', DNA, 4))
    assert decode(X, DNA) == ['ACGT', 'TTNN']
    assert decode(X[0], PROTEIN[:4], unknown_letter='-') == 'ACDE'
    assert channel_names(RNA, 'HI') == ['AH', 'AI', 'CH', 'CI', 'GH', 'GI', 'UH', 'UI']


# -- splits and generators --------------------------------------------------------------------
def test_split_is_seeded_disjoint_complete_and_stratified(tmp_path):
    paths = class_files(tmp_path, sizes=(100, 20))
    data = FastaData(paths, seed=3)
    index = data.index
    together = np.concatenate([index['train'], index['val'], index['test']])
    assert sorted(together.tolist()) == list(range(120))  # disjoint and complete
    for c, n in ((0, 100), (1, 20)):  # every class cut 70/15/15
        counts = [int((data.labels[index[g]] == c).sum()) for g in ('train', 'val', 'test')]
        assert counts == [n - 2 * round(n * 0.15), round(n * 0.15), round(n * 0.15)]
    again = FastaData(paths, seed=3)
    other = FastaData(paths, seed=4)
    for group in ('train', 'val', 'test'):
        np.testing.assert_array_equal(again.index[group], index[group])
    assert not np.array_equal(other.index['test'], index['test'])


def test_generators_serve_the_split(tmp_path):
    data = FastaData(class_files(tmp_path), seed=0)
    train = data.train(4)
    assert isinstance(train, MatrixBatchGenerator) and train.shuffle and train.batch_size == 4
    x, y = next(iter(data.test()))
    np.testing.assert_array_equal(x, data.X[data.index['test']])
    np.testing.assert_array_equal(y, data.labels[data.index['test']])
    assert data.group_sequences('test') == [data.sequences[i] for i in data.index['test']]
    assert data.decode(x[:1]) == [data.sequences[data.index['test'][0]]]


def test_split_errors(tmp_path):
    paths = class_files(tmp_path, sizes=(10, 2))
    with pytest.raises(ValueError, match=r"class 'class1' .* has 2 sequences, too few"):
        FastaData(paths)
    with pytest.raises(ValueError, match='three fractions'):
        FastaData(paths, split=(0.5, 0.5))
    data = FastaData(class_files(tmp_path), split=(0.8, 0.2, 0))
    assert len(data.index['test']) == 0
    with pytest.raises(ValueError, match="the 'test' set is empty"):
        data.test()


def test_prediction_generator(tmp_path):
    path = write(tmp_path / 'p.fa', fasta([('p1 x', 'ACGT'), ('p2', 'GG')]))
    generator = prediction_generator(path, 'ACGT', length=6)
    assert generator.names == ['p1 x', 'p2'] and not generator.has_labels
    x = next(iter(generator))
    np.testing.assert_array_equal(x, [onehot('ACGT', DNA, 6), onehot('GG', DNA, 6)])
    assert next(iter(prediction_generator(path))).shape == (2, 4, 4)  # inferred, own length
    with pytest.raises(ValueError, match=r"1 sequences are longer than the model's input of 3 "
                                         r"positions, e.g. >p1 x \(4\)"):
        prediction_generator(path, 'ACGT', length=3)
