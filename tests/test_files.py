"""The one atomic-write helper (``dlutil.files``) and the one command-line error exit."""
import errno
import os
import subprocess
import sys

import pytest

from dlutil import files
from dlutil._program import DEBUG_HINT, program_name, run_cli
from dlutil.errors import StorageError


def dead_pid():
    done = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_temporary_names_are_hidden_recognisable_and_swept_only_when_dead(tmp_path):
    tmp = files.temporary_name(tmp_path / 'train.h5')
    name = os.path.basename(tmp)
    assert name.startswith('.train.h5.dlutil-') and name.endswith(f'-{os.getpid()}-'
                                                                  f'{name.split("-")[-1]}')
    dead = files.temporary_name(tmp_path / 'a.h5').replace(f'-{os.getpid()}-', f'-{dead_pid()}-')
    host = os.path.basename(dead).split('.dlutil-')[1].rsplit('-', 2)[0]
    kept = [tmp, str(tmp_path / f'.b.h5.dlutil-{host}x-{dead_pid()}-0.tmp'),  # another machine
            str(tmp_path / '.c.h5.1234.tmp'), str(tmp_path / 'a.h5'),           # other names
            str(tmp_path / f'd.dlutil-{host}-{dead_pid()}-0.tmp')]
    for path in kept + [dead]:
        open(path, 'w').close()
    assert [files.in_use(p) for p in kept[:3] + [dead]] == [True, True, False, False]
    assert files.sweep_temporaries(tmp_path) == [dead]
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in kept)


def test_a_failed_group_leaves_every_target_as_it_was(tmp_path):
    a, b = tmp_path / 'a.txt', tmp_path / 'b.txt'
    files.atomic_write(a, lambda f: f.write('old a'))
    files.atomic_write(b, lambda f: f.write('old b'))
    with pytest.raises(StorageError) as error:
        with files.atomic_paths(a, b) as (tmp_a, tmp_b):
            with open(tmp_a, 'w') as handle:
                handle.write('new a')
            raise OSError(errno.ENOSPC, 'No space left on device', tmp_b)
    assert str(b) in error.value.strerror and 'disk full while writing' in error.value.strerror
    assert (a.read_text(), b.read_text()) == ('old a', 'old b')
    assert sorted(os.listdir(tmp_path)) == ['a.txt', 'b.txt']


def test_other_errors_pass_through_and_interrupts_clean_up(tmp_path):
    for error in (KeyError('x'), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with files.atomic_path(tmp_path / 'x.json') as tmp:
                open(tmp, 'w').close()
                raise error
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('code, text', [(errno.ENOSPC, 'disk full while writing'),
                                        (errno.EDQUOT, 'disk full while writing'),
                                        (errno.EIO, 'input/output error while writing'),
                                        (errno.EFBIG, 'larger than this system allows'),
                                        (errno.EROFS, 'read-only'),
                                        (errno.EACCES, 'permission denied')])
def test_disk_faults_say_what_happened_to_which_file(tmp_path, code, text):
    error = files.storage_error(OSError(code, os.strerror(code)), tmp_path / 'x.h5',
                                written=3 << 20)
    assert isinstance(error, StorageError) and error.errno == code
    assert text in error.strerror and str(tmp_path / 'x.h5') in error.strerror
    if code == errno.ENOSPC:
        assert 'needs more than 3.0 MB;' in error.strerror and ' MB free on /' in error.strerror
    assert files.storage_error(ValueError('x'), 'x') is None


def test_run_cli_one_error_exit(capsys):
    def fail(error):
        def work():
            raise error
        return work
    full = StorageError(errno.ENOSPC, 'disk full while writing x.h5 (…): free space and run '
                                      'the same command again')
    assert run_cli(fail(full)) == 1
    assert capsys.readouterr().err == f'error: {full.strerror}\n'  # one line, no hint
    assert run_cli(fail(ValueError('--block must be positive'))) == 1
    assert capsys.readouterr().err.startswith('error: --block must be positive\n')
    assert run_cli(fail(RuntimeError('internal'))) == 1
    assert capsys.readouterr().err == f'error: RuntimeError: internal\n{DEBUG_HINT}\n'
    assert run_cli(fail(KeyboardInterrupt()), interrupted='interrupted: nothing written') == 130
    assert capsys.readouterr().err == 'interrupted: nothing written\n'
    with pytest.raises(ValueError):
        run_cli(fail(ValueError('x')), debug=True)
    assert run_cli(lambda: None) == 0 and run_cli(lambda: 3) == 3


@pytest.mark.parametrize('argv0, name', [('/usr/bin/dlutil-prepare', 'dlutil-prepare'),
                                         ('/x/dlutil/prepare/__main__.py',
                                          'python -m dlutil.prepare')])
def test_prepare_program_name(argv0, name):
    assert program_name(argv0, installed='dlutil-prepare', module='dlutil.prepare') == name
