"""Faults of the disk in every writer: full (for real, through the file size limit, and in
process, at the lowest call the writers make), failing, a ``kill -9`` mid-write, the mode of the
files, and the order in which multi-file outputs appear.

The real fault: a subprocess whose ``RLIMIT_FSIZE`` is a few KB, so the kernel refuses a write
past it (``EFBIG``; Python ignores SIGXFSZ) just as a full disk refuses any (``ENOSPC``); it works
as any user, root included, with nothing to mount.
"""
import errno
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT
from dlutil import files, h5output
from dlutil._program import DEBUG_HINT
from dlutil.prepare import cli as prepare_cli
from dlutil.prepare import sequences as prepare
from dlutil.variants.effects import score_vcf
from planted_motif import load_planted, random_dna

LIMIT = 48 * 1024  # bytes a subprocess may write into one file

RUN = '''
sys.argv = sys.argv[{skip}:]
if sys.argv[0] == '-m':
    del sys.argv[0]
    runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
else:
    runpy.run_path(sys.argv[0], run_name='__main__')
'''

LIMITED = '''
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
''' + RUN.format(skip=1)

KILLED_IN = '''
import os, runpy, signal, sys
module, cls, method = sys.argv[1].rsplit('.', 2)
target = getattr(__import__(module, fromlist=[cls]), cls)
real = getattr(target, method)

def killed(self, *args, **kwargs):  # the write happens, then the process dies as by kill -9
    real(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

setattr(target, method, killed)
''' + RUN.format(skip=2)


def python(*argv, code=None, cwd=ROOT):
    """Run ``python [-c code] argv`` the way a user would; the CompletedProcess."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    command = [sys.executable, *(['-c', code] if code else []), *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def limited(*argv):
    """``argv`` in a subprocess that cannot write more than LIMIT bytes into a file."""
    return python(*argv, code=LIMITED.format(limit=LIMIT))


def temporaries(folder):
    return sorted(str(p) for p in folder.rglob('.*') if p.is_file() and 'tmp' in p.name)


def assert_one_line_error(done, *names):
    """Exit 1; the last line of stderr, and the only error line, names the file and what to do."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith('error:')] == lines[-1:], done.stderr
    assert all(name in lines[-1] for name in names), lines[-1]
    assert 'run the same command again' in lines[-1]
    for noise in ('Traceback', 'Exception ignored', 'HDF5', DEBUG_HINT):
        assert noise not in done.stderr, done.stderr[-3000:]


# -- inputs ------------------------------------------------------------------------------------
def write_vcf(path, samples=40, variants=3000, seed=0):
    rng = np.random.default_rng(seed)
    names = [f's{i}' for i in range(samples)]
    lines = ['##fileformat=VCFv4.2', '##contig=<ID=chr7,length=10000000>',
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t' + '\t'.join(names)]
    calls = rng.integers(0, 2, size=(variants, samples, 2))
    for v in range(variants):
        gts = '\t'.join(f'{a}|{b}' for a, b in calls[v])
        lines.append(f'chr7\t{100 + 10 * v}\t.\tA\tG\t.\tPASS\t.\tGT\t{gts}')
    path.write_text('\n'.join(lines) + '\n')
    table = path.parent / 'samples.tsv'
    table.write_text(''.join(f'{n}\t{"AB"[i % 2]}\n' for i, n in enumerate(names)))
    return path, table


def write_fasta(path, n=1200, length=50, seed=0):
    rng = np.random.default_rng(seed)
    path.write_text(''.join(f'>r{i}\n{random_dna(rng, length)}\n' for i in range(n)))
    labels = path.parent / 'labels.tsv'
    labels.write_text('name\ty\n' + ''.join(f'r{i}\t{i % 2}\n' for i in range(n)))
    return path, labels


@pytest.fixture
def planted(tmp_path):
    """The planted-motif model (two tasks, L = 60), a genome, a VCF of 300 SNVs, a checkpoint."""
    from dlutil.search import results
    rng = np.random.default_rng(3)
    chrom = random_dna(rng, 2000)
    genome = tmp_path / 'genome.fa'
    genome.write_text('>chr1\n' + '\n'.join(chrom[i:i + 60] for i in range(0, 2000, 60)) + '\n')
    other = {'A': 'C', 'C': 'G', 'G': 'T', 'T': 'A'}
    rows = [f'chr1\t{p}\tv{p}\t{chrom[p - 1]}\t{other[chrom[p - 1]]}\t.\t.\t.\n'
            for p in range(40, 1940, 6)]
    vcf = tmp_path / 'calls.vcf'
    vcf.write_text('##fileformat=VCFv4.2\n##contig=<ID=chr1,length=2000>\n'
                   '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n' + ''.join(rows))
    module, model = load_planted(tmp_path)
    checkpoint = tmp_path / 'best.pt'
    results.save_checkpoint(str(checkpoint), {'model': model.state_dict(), 'epoch': 1,
                                              'config': {}})
    (tmp_path / 'data').mkdir()
    return model, genome, vcf, checkpoint


def vep_argv(tmp_path, planted):
    model, genome, vcf, checkpoint = planted
    return [os.path.join(ROOT, 'main.py'), '--model', tmp_path / 'planted_def.py', '--data',
            tmp_path / 'data', '--result', tmp_path / 'res', '--vep', vcf, '--genome', genome,
            '--checkpoint', checkpoint, '--cpu', '--threads', 1]


# -- a full disk, for real ---------------------------------------------------------------------
@pytest.mark.parametrize('command', ['vcf', 'fasta'])
def test_prepare_on_a_full_disk_says_so_in_one_line(tmp_path, command):
    out = tmp_path / 'out'
    if command == 'vcf':
        vcf, table = write_vcf(tmp_path / 'panel.vcf')
        argv, victim = [vcf, '--samples', table, '--block', 500], 'panel.h5'
    else:
        fasta, labels = write_fasta(tmp_path / 'seqs.fa')
        argv, victim = [fasta, '--labels', labels, '--chunk-rows', 64], 'train.h5'
    done = limited('-m', 'dlutil.prepare', command, *argv, '-o', out)
    assert_one_line_error(done, str(out / victim))
    assert not out.exists()  # no half file, temporary or summary, nor the folder it made


def test_vep_on_a_full_disk_says_so_in_one_line(tmp_path, planted):
    done = limited(*vep_argv(tmp_path, planted), '-bs', 16)
    assert_one_line_error(done, str(tmp_path / 'res' / 'vep' / 'calls.h5'))
    assert not (tmp_path / 'res').exists()  # nothing half-written; the folder it made is gone


def test_predictions_on_a_full_disk_say_so_in_one_line(cli, h5_data, classifier_def, tmp_path):
    result = tmp_path / 'res'
    assert cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-ep', 1, '--seed', 1,
               '-c')[0] == 0
    big = h5_data / 'big.h5'
    with h5py.File(big, 'w') as f:
        f['data'] = np.zeros((3000, 4, 1, 40), np.float32)
    done = limited(os.path.join(ROOT, 'main.py'), '-f', classifier_def, '-d', h5_data, '-r',
                   result, '-p', 'big.h5', '-c', '--threads', 1)
    assert_one_line_error(done, 'predictions/big.h5')
    assert not os.listdir(result / 'predictions')  # none of its .npy, .tsv, .h5, no temporary


# -- a full or failing disk, in this process ---------------------------------------------------
@pytest.fixture
def failing_pwrite(monkeypatch):
    """``os.pwrite``, the call under every HDF5 file we write, fails past ``limit`` bytes."""
    def install(code, limit=20_000):
        real = os.pwrite

        def pwrite(fd, data, offset):
            if offset + len(data) > limit:
                raise OSError(code, os.strerror(code))
            return real(fd, data, offset)
        monkeypatch.setattr(os, 'pwrite', pwrite)
    return install


MESSAGES = {errno.ENOSPC: 'disk full while writing', errno.EIO: 'input/output error while '
                                                                 'writing'}


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EIO])
def test_prepare_vcf_in_process_disk_fault(tmp_path, failing_pwrite, capsys, code):
    vcf, table = write_vcf(tmp_path / 'panel.vcf')
    failing_pwrite(code)
    assert prepare_cli.main(['vcf', str(vcf), '--samples', str(table), '-o',
                             str(tmp_path / 'out'), '--block', '500']) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ' + MESSAGES[code]) and '\n' not in err, err
    assert str(tmp_path / 'out' / 'panel.h5') in err and not (tmp_path / 'out').exists()


def test_vep_in_process_disk_full_names_the_file(tmp_path, planted, failing_pwrite):
    model, genome, vcf, _ = planted
    out = tmp_path / 'vep' / 'calls.h5'
    failing_pwrite(errno.ENOSPC)
    with pytest.raises(files.StorageError) as error:
        score_vcf(model, str(vcf), str(genome), str(out), batch_size=16, progress=False)
    assert str(error.value.strerror).startswith(f'disk full while writing {out} (needs more')
    assert os.listdir(out.parent) == []


def test_prepare_fasta_in_process_disk_full_names_the_file(tmp_path, failing_pwrite):
    fasta, labels = write_fasta(tmp_path / 'seqs.fa')
    failing_pwrite(errno.ENOSPC)
    with pytest.raises(files.StorageError, match='disk full while writing .*train.h5'):
        prepare.prepare_fasta(fasta, tmp_path / 'out', labels, chunk_rows=64)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('victim', ['last.pt', 'best.pt', 'config.json', 'search.json'])
def test_search_disk_full_in_a_checkpoint_or_json(cli, h5_data, classifier_def, tmp_path,
                                                  monkeypatch, victim):
    """The search's writers (checkpoints, JSON) on a disk that fills when ``victim`` is synced."""
    real = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f'/proc/self/fd/{fd}')).startswith(f'.{victim}.'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    result = tmp_path / 'res'
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', result, '-y', '-ep', 1, '-c')
    lines = err.strip().splitlines()
    assert code == 1 and lines[-1].startswith('error: disk full while writing '), err
    assert victim in lines[-1] and 'run the same command again' in lines[-1]
    assert DEBUG_HINT not in err and not temporaries(result)


# -- kill -9 mid-write, then the same command --------------------------------------------------
def test_kill_9_in_prepare_vcf_then_the_same_command_sweeps_its_temporary(tmp_path):
    vcf, table = write_vcf(tmp_path / 'panel.vcf', variants=600)
    out = tmp_path / 'out'
    argv = ['-m', 'dlutil.prepare', 'vcf', vcf, '--samples', table, '-o', out, '--block', 100]
    done = python('dlutil.genotypes.h5.GenotypeWriter.append', *argv, code=KILLED_IN)
    assert done.returncode == -signal.SIGKILL
    left = temporaries(out)
    assert len(left) == 1 and '.panel.h5.dlutil-' in left[0] and not (out / 'panel.h5').exists()
    # a temporary file of a live process (this one), another machine's, other names: kept
    alive = files.temporary_name(out / 'other.h5')
    open(alive, 'w').close()
    dead = int(os.path.basename(left[0]).split('-')[-2])
    bystanders = [out / '.notes.tmp', out / 'mine.dlutil-x-1-0.tmp',
                  out / f'.y.h5.dlutil-elsewhere-{dead}-0.tmp']
    for path in bystanders:
        path.write_text('keep')
    done = python(*argv)
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(left[0]) and os.path.exists(alive)
    assert all(path.read_text() == 'keep' for path in bystanders)
    with h5py.File(out / 'panel.h5') as f:
        assert f['data'].shape == (80, 600)


def test_kill_9_in_vep_then_the_same_command_sweeps_its_temporaries(tmp_path, planted):
    argv = vep_argv(tmp_path, planted) + ['-bs', 16]
    done = python('dlutil.variants.outputs.Output.add', *argv, code=KILLED_IN)
    assert done.returncode == -signal.SIGKILL
    vep = tmp_path / 'res' / 'vep'
    left = sorted(temporaries(vep))
    assert len(left) == 2 and not list(vep.glob('calls*'))
    assert '.calls.h5.dlutil-' in left[0] and '.calls.vcf.gz.dlutil-' in left[1]
    done = python(*argv)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(vep)) == ['calls.h5', 'calls.top.tsv', 'calls.vcf.gz',
                                       'calls.vcf.gz.tbi']  # the temporaries are gone


# -- the mode of outputs -----------------------------------------------------------------------
@pytest.fixture(params=[0o022, 0o027], ids=['022', '027'])
def umask(request):
    old = os.umask(request.param)
    yield 0o666 & ~request.param
    os.umask(old)


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_outputs_get_the_mode_of_the_umask(tmp_path, planted, umask):
    fasta, labels = write_fasta(tmp_path / 'seqs.fa', n=200)
    prepare.prepare_fasta(fasta, tmp_path / 'data_out', labels)  # train.h5 is shuffled
    written = [tmp_path / 'data_out' / name for name in ('train.h5', 'valid.h5', 'test.h5',
                                                         'summary.json')]
    vcf, table = write_vcf(tmp_path / 'panel.vcf', samples=4, variants=50)
    assert prepare_cli.main(['vcf', str(vcf), '-o', str(tmp_path / 'g')]) == 0
    written += [tmp_path / 'g' / 'panel.h5', tmp_path / 'g' / 'panel.summary.json']
    model, genome, calls, _ = planted
    score_vcf(model, str(calls), str(genome), str(tmp_path / 'vep' / 'calls.h5'), progress=False)
    written += [tmp_path / 'vep' / f'calls.{name}' for name in ('h5', 'top.tsv', 'vcf.gz',
                                                                'vcf.gz.tbi')]
    from dlutil.predictions import write_outputs
    written += write_outputs(str(tmp_path / 'p' / 'x.h5'), {None: np.zeros((3, 2))}, {})
    assert {str(path): mode(path) for path in written} == dict.fromkeys(map(str, written),
                                                                        umask)


# -- the order in which the files of one output appear -----------------------------------------
@pytest.fixture
def renames(monkeypatch):
    """Every ``os.remove``/``os.replace`` onto a visible file, in order: (op, file name)."""
    seen = []
    real_remove, real_replace = os.remove, os.replace

    def remove(path, *args, **kwargs):
        if not os.path.basename(path).startswith('.'):
            seen.append(('remove', os.path.basename(path)))
        return real_remove(path, *args, **kwargs)

    def replace(source, target, *args, **kwargs):
        seen.append(('replace', os.path.basename(target)))
        return real_replace(source, target, *args, **kwargs)
    monkeypatch.setattr(os, 'remove', remove)
    monkeypatch.setattr(os, 'replace', replace)
    return seen


def test_vep_commits_the_h5_last(tmp_path, planted, renames):
    model, genome, vcf, _ = planted
    out = str(tmp_path / 'vep' / 'calls.h5')
    for _ in range(2):  # the second run replaces the first one's files
        renames.clear()
        score_vcf(model, str(vcf), str(genome), out, progress=False)
    # the old .h5, then the old index, go first: no new .vcf.gz beside an old index
    assert renames == [('remove', 'calls.h5'), ('remove', 'calls.vcf.gz.tbi'),
                       ('replace', 'calls.top.tsv'), ('replace', 'calls.vcf.gz'),
                       ('replace', 'calls.vcf.gz.tbi'), ('replace', 'calls.h5')]


def test_prepare_commits_the_summary_last(tmp_path, renames):
    fasta, labels = write_fasta(tmp_path / 'seqs.fa', n=200)
    for _ in range(2):
        renames.clear()
        prepare.prepare_fasta(fasta, tmp_path / 'out', labels)
    assert renames[0] == ('remove', 'summary.json') and renames[-1] == ('replace', 'summary.json')
    assert sorted(renames[1:-1]) == [('replace', f'{s}.h5') for s in ('test', 'train', 'valid')]
    vcf, table = write_vcf(tmp_path / 'panel.vcf', samples=4, variants=50)
    for _ in range(2):
        renames.clear()
        assert prepare_cli.main(['vcf', str(vcf), '-o', str(tmp_path / 'g')]) == 0
    assert renames == [('remove', 'panel.summary.json'), ('replace', 'panel.h5'),
                       ('replace', 'panel.summary.json')]


def test_predictions_commit_the_h5_last(tmp_path, renames):
    from dlutil.predictions import write_outputs
    for _ in range(2):
        renames.clear()
        write_outputs(str(tmp_path / 'x.h5'), {None: np.zeros((3, 2))}, {})
    assert renames == [('remove', 'x.h5.h5'), ('replace', 'x.h5.npy'), ('replace', 'x.h5.tsv'),
                       ('replace', 'x.h5.h5')]


def test_h5output_never_lets_the_library_see_the_fault(tmp_path, failing_pwrite):
    """After the disk refuses a write, the file stays whole for the library: it reads back what
    it wrote, closes cleanly, and the fault is raised once, by us."""
    failing_pwrite(errno.ENOSPC, limit=4096)
    x = np.arange(50_000, dtype=np.float64)
    with pytest.raises(files.StorageError, match='disk full while writing'):
        with h5output.create(tmp_path / 'x.h5') as f:
            f.create_dataset('x', data=x, chunks=(1000,))
            assert np.array_equal(f['x'][:], x)  # read back from what the sink holds
    assert os.listdir(tmp_path) == []
