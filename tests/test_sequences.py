"""The merged sequence pieces against what each predecessor did (as of 8fa32e3):

- FASTA: ``readers.read_fasta`` (prepare) yielded ``(first word, bytes, header line)``;
  ``fasta_data.read_fasta`` (pysster data) returned ``[(header, [lines])]``, skipped ``;``
  comments, dropped whitespace inside lines, refused empty files and records;
- encoding: ``onehot.encode_batch`` (prepare) made N/IUPAC 0.25 rows (or fractional), read U as T
  and refused other characters; ``fasta_data.encode`` (pysster) made any letter outside any
  alphabet an all-zero column, padded and centred, multiplied structure channels;
- reverse complement: ``onehot.reverse_complement`` (numpy and torch) and the augmentation of
  ``batch_generator`` (``np.flip(np.flip(x, 1), -1)``);
- atomic writes: ``search.results.atomic_write`` and ``prepare.h5_writer._temporary``.
"""
import gzip
import os

import numpy as np
import pytest
import torch

from dlutil import contract, files
from dlutil.cli import build_parser
from dlutil.search import results
from dlutil.sequences import fasta_data, onehot, readers
from dlutil.sequences.alphabets import DNA, IUPAC, PROTEIN, RNA

COMPLEMENT = str.maketrans('ACGTRYSWKMBDHVN', 'TGCAYRSWMKVHDBN')


# -- the FASTA reader ------------------------------------------------------------------------
RECORDS = [('r1 chr1:5-9 0,2', ['ACGTAC', 'gtAC']), ('r2', ['NNACG']), ('r3 x', ['T'])]


def write_fasta(path, gzipped):
    text = ';a comment\n\n' + ''.join(f'>{h}\r\n' + ''.join(f'{line[:3]} {line[3:]}\n\n'
                                                          for line in lines)
                                      for h, lines in RECORDS)
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize('gzipped', [False, True])
def test_one_reader_serves_both_predecessors(tmp_path, gzipped):
    path = write_fasta(tmp_path / 'reads.txt', gzipped)  # gzip is told by content, not name
    records = list(readers.read_fasta(path))
    # prepare's view: the name (first word), the sequence as bytes, the header's line number
    assert [(r.name, r.sequence, r.line) for r in records] == [
        ('r1', b'ACGTACgtAC', 3), ('r2', b'NNACG', 8), ('r3', b'T', 11)]
    # the pysster data's view: the whole header and the lines as written, whitespace dropped
    assert fasta_data.read_records(path) == RECORDS


def test_reader_streams_and_names_the_file_and_line(tmp_path):
    path = tmp_path / 'bad.fa'
    path.write_text('>ok\nACGT\n>\nACGT\n')
    stream = readers.read_fasta(path)
    assert next(stream).name == 'ok'  # the first record comes before the bad one is read
    with pytest.raises(readers.InputError, match='bad.fa, line 3: a FASTA header without a name'):
        next(stream)
    for text, message in (('ACGT\n>x\nAC\n', 'line 1: sequence before the first ">" header'),
                          ('\n\n', 'no FASTA records'),
                          ('>x\n>y\nAC\n', 'line 1: record >x has no sequence')):
        path.write_text(text)
        for read in (lambda p: list(readers.read_fasta(p)), fasta_data.read_records):
            with pytest.raises(ValueError, match=message):
                read(path)


def test_one_gzip_sniffer(tmp_path):
    plain, packed = tmp_path / 'a.gz', tmp_path / 'b.fa'  # names that lie
    plain.write_text('>a\nAC\n')
    packed.write_bytes(gzip.compress(b'>a\nAC\n'))
    assert not readers.is_gzip(plain) and readers.is_gzip(packed)
    with readers.open_file(packed, text=True) as handle:
        assert handle.read() == '>a\nAC\n'


# -- the encoder -----------------------------------------------------------------------------
def reference(sequence, alphabet, unknown, width=None, offset=0):
    """One-hot by hand, a letter at a time: the rule of the module docstring."""
    x = np.zeros((len(alphabet), width or len(sequence)), np.float32)
    for i, letter in enumerate(sequence.upper()):
        if letter in alphabet:
            x[alphabet.index(letter), offset + i] = 1
        elif unknown == 'zeros':
            continue
        else:
            bases = IUPAC[letter].replace('T', alphabet[3])  # KeyError: not a nucleotide code
            if len(bases) == 1 or unknown == 'fractional':  # U as T (RNA: T as U); spread
                for base in bases:
                    x[alphabet.index(base), offset + i] = 1 / len(bases)
            else:
                x[:, offset + i] = 1 / len(alphabet)
    return x


IUPAC_TEXT = 'ACGTUNRYSWKMBDHVacgtunrysw'


@pytest.mark.parametrize('unknown', ['uniform', 'fractional'])
@pytest.mark.parametrize('alphabet', [DNA, RNA])
def test_iupac_policies_as_prepare_encoded(unknown, alphabet):
    x = onehot.encode_batch([IUPAC_TEXT.encode()] * 2, unknown=unknown, alphabet=alphabet)
    expected = reference(IUPAC_TEXT, alphabet, unknown)
    np.testing.assert_array_equal(x[1], expected)
    assert x[0, :, IUPAC_TEXT.index('N')].tolist() == [0.25] * 4
    assert x[0, :, IUPAC_TEXT.index('U')].tolist() == x[0, :, IUPAC_TEXT.index('T')].tolist()
    # the variable-length path of the pysster data gives the same columns
    X, counts = onehot.encode([IUPAC_TEXT, 'ACG'], alphabet, unknown=unknown)
    np.testing.assert_array_equal(X[0], expected)
    np.testing.assert_array_equal(X[1], reference('ACG', alphabet, unknown, len(IUPAC_TEXT)))
    with pytest.raises(onehot.BadLetter, match=r"character '-' at position 3") as bad:
        onehot.encode_batch([b'ACGT', b'AC-T'], unknown=unknown, alphabet=alphabet)
    assert (bad.value.row, bad.value.position) == (1, 2)
    with pytest.raises(onehot.BadLetter) as bad:
        onehot.encode(['ACGTACGT', 'AC', 'GGGX'], alphabet, unknown=unknown)
    assert (bad.value.row, bad.value.position, bad.value.char) == (2, 3, 'X')


def test_zero_policy_as_the_pysster_data_encoded():
    seqs = ['acgtN-', 'MKV', 'ACGU*']
    for alphabet in (DNA, RNA, PROTEIN):
        X, counts = onehot.encode(seqs, alphabet, length=8, padding='center')
        for row, seq in enumerate(seqs):
            offset = (8 - len(seq)) // 2
            np.testing.assert_array_equal(
                X[row], reference(seq, alphabet, 'zeros', 8, offset))
        outside = [c for c in ''.join(seqs).upper() if c not in alphabet]
        assert counts['sequence'] == {c: outside.count(c) for c in set(outside)}
    # any character is an all-zero column; the prepare fast path agrees
    np.testing.assert_array_equal(onehot.encode_batch([b'AC-N*t'], unknown='zeros')[0],
                                  reference('AC-N*t', DNA, 'zeros'))


def test_structure_channels_under_both_policies():
    for unknown, n_share in (('zeros', 0.0), ('uniform', 0.25)):
        X, counts = onehot.encode(['ACNU', 'GG'], RNA, ['HIHQ', 'MS'], 'HIMS', unknown=unknown)
        assert X.shape == (2, 16, 4)
        assert X[0, 0 * 4 + 0, 0] == 1 and X[0, 1 * 4 + 1, 1] == 1  # AH, CI
        assert X[0, 3 * 4 + 0, 3] == 0 and not X[0, :, 3].any()  # structure Q: unknown
        assert X[0, [c * 4 + 0 for c in range(4)], 2].tolist() == [n_share] * 4  # N with H
        assert counts == {'sequence': {'N': 1}, 'structure': {'Q': 1}}


def test_policies_are_explicit():
    with pytest.raises(ValueError, match='unknown must be one of'):
        onehot.encode_batch([b'ACGT'], unknown='ignore')
    with pytest.raises(ValueError, match="alphabet must be 'ACGT' or 'ACGU'"):
        onehot.encode(['MKV'], PROTEIN, unknown='uniform')


def test_each_default_stays_where_it_was(tmp_path):
    a, b = tmp_path / 'a.fa', tmp_path / 'b.fa'
    a.write_text(''.join(f'>a{i}\nACGTN\n' for i in range(6)))
    b.write_text(''.join(f'>b{i}\nTTTTT\n' for i in range(6)))
    assert not fasta_data.FastaData([a, b], alphabet='dna').X[0, :, 4].any()  # pysster: zeros
    spread = fasta_data.FastaData([a, b], alphabet='dna', unknown='uniform')
    assert spread.X[0, :, 4].tolist() == [0.25] * 4
    assert onehot.one_hot('N').ravel().tolist() == [0.25] * 4  # prepare: 0.25 rows


# -- the reverse complement ------------------------------------------------------------------
def test_reverse_complement_of_arrays_and_tensors():
    rng = np.random.default_rng(0)
    seqs = [''.join(rng.choice(list('ACGTN'), 9)) for _ in range(5)]
    x = onehot.encode_batch([s.encode() for s in seqs], unknown='fractional')
    back = onehot.reverse_complement(x)
    assert back.flags['C_CONTIGUOUS'] and back.shape == x.shape
    for seq, row in zip(seqs, back):
        assert onehot.decode(row) == seq.translate(COMPLEMENT)[::-1]  # by the letters
    np.testing.assert_array_equal(back, np.flip(np.flip(x, 1), -1))  # as the augmentation did
    np.testing.assert_array_equal(onehot.reverse_complement(back), x)
    tall = x[:, :, None, :]  # (n, 4, 1, L)
    np.testing.assert_array_equal(onehot.reverse_complement(tall)[:, :, 0], back)
    tensor = onehot.reverse_complement(torch.from_numpy(tall))
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_array_equal(tensor.numpy()[:, :, 0], back)


# -- atomic writes ---------------------------------------------------------------------------
def test_one_atomic_write(tmp_path):
    assert results.atomic_write is files.atomic_write  # the name other modules import
    path = tmp_path / 'sub' / 'x.json'
    files.atomic_write(path, lambda f: f.write('old'))
    with pytest.raises(RuntimeError):
        files.atomic_write(path, lambda f: (f.write('half'), (_ for _ in ()).throw(
            RuntimeError('crash'))))
    assert path.read_text() == 'old' and os.listdir(path.parent) == ['x.json']


# -- the def.py contract ---------------------------------------------------------------------
def test_contract_is_written_once_and_shown_by_help():
    assert build_parser().epilog.startswith(contract.CONTRACT)  # then the optional extras
    names = {n for needed in contract.NEEDED.values() for n in needed}
    for name in names | set(contract.FUNCTIONS) | set(contract.MODEL_METHODS):
        assert name in contract.CONTRACT, name
    lines = contract.CONTRACT.splitlines()
    for mode, flag in contract.FLAGS.items():  # every function a flag needs is marked with it
        for name in contract.NEEDED[mode]:
            if name == 'Model':
                continue
            first = next(i for i, line in enumerate(lines) if line.startswith(f'  {name}('))
            entry = [lines[first]]
            for line in lines[first + 1:]:
                if not line.startswith('   '):
                    break
                entry.append(line)
            assert f'({flag})' in ' '.join(entry), (name, flag, entry)


def test_encode_batch_refuses_sequences_of_different_lengths():
    """Joined bytes of 3 + 5 letters reshape to two rows of 4: refused, not misaligned."""
    from dlutil.sequences.onehot import encode_batch
    with pytest.raises(ValueError, match=r'one length, got lengths \[3, 5\]'):
        encode_batch([b'ACG', b'TTACG'])
    assert encode_batch([b'ACG', b'TTA']).shape == (2, 4, 3)
