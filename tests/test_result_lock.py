"""The results directory's lock: a second run is refused by name, and a refused run leaves a
directory that was missing or empty as it found it."""
import fcntl
import os

import pytest

from dlutil.errors import ResultInUseError
from dlutil.search import results


def test_a_held_directory_is_one_named_error(cli, classifier_def, h5_data, tmp_path):
    root = tmp_path / 'res'
    with results.ResultStore(root).lock():
        with pytest.raises(ResultInUseError):  # what the API raises: one of errors.py's classes
            with results.ResultStore(root).lock():
                pass
        code, err = cli('-f', classifier_def, '-d', h5_data, '-r', root, '-y', '-ep', 1, '-c')
        assert os.listdir(root) == ['.lock']  # the refused run touched nothing
    assert code == 1 and err == (
        f'error: {root} is in use by process {os.getpid()}: another run holds its lock '
        f'({root}/.lock); wait for it to finish, or use another --result\n')
    assert not root.exists()  # the holder made the folder and wrote nothing: it is gone


def test_vep_takes_the_lock(cli, classifier_def, h5_data, tmp_path):
    (tmp_path / 'bad.pt').write_bytes(b'not a checkpoint')  # never read: refused before
    (tmp_path / 'calls.vcf').write_text('##fileformat=VCFv4.2\n')
    (tmp_path / 'genome.fa').write_text('>chr1\nACGT\n')
    root = tmp_path / 'res'
    with results.ResultStore(root).lock():
        code, err = cli('-f', classifier_def, '-d', h5_data, '-r', root, '--vep',
                        tmp_path / 'calls.vcf', '--genome', tmp_path / 'genome.fa',
                        '--checkpoint', tmp_path / 'bad.pt', '-c')
        assert os.listdir(root) == ['.lock']  # no vep/ folder was made beside the holder's work
    assert code == 1 and f'{root} is in use by process {os.getpid()}' in err


def test_a_search_refused_before_training_leaves_no_folder(cli, classifier_def, tmp_path):
    empty_data = tmp_path / 'data'
    empty_data.mkdir()  # no train.h5: the preflight refuses it after the lock was taken
    code, err = cli('-f', classifier_def, '-d', empty_data, '-r', tmp_path / 'new', '-y',
                    '-ep', 1)
    assert code == 1 and 'train.h5' in err
    assert not (tmp_path / 'new').exists()  # neither the folder nor its .lock


def test_a_search_refused_after_hashing_its_data_leaves_no_folder(cli, classifier_def, h5_data,
                                                                  tmp_path):
    # --ray with an address where nothing listens is refused once the data are hashed (the
    # hashes are cached in the results folder): neither the cache nor the lock stays behind
    pytest.importorskip('ray')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'new', '-y', '-ep', 1,
                    '--ray', '127.0.0.1:1')
    assert code == 1 and '--ray 127.0.0.1:1: no Ray head node answers there' in err
    assert not (tmp_path / 'new').exists()


@pytest.mark.parametrize('old_lock', [False, True])
def test_a_refused_run_leaves_an_empty_folder_empty(cli, classifier_def, h5_data, tmp_path,
                                                    old_lock):
    (tmp_path / 'empty').mkdir()
    if old_lock:  # left by a refused run of an older version
        (tmp_path / 'empty' / '.lock').write_text('process 1')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'empty', '-e')
    assert code == 1 and 'no trained model there (no best.json)' in err
    assert os.listdir(tmp_path / 'empty') == []  # no .lock: the folder is as it was


def test_a_refused_vep_with_a_checkpoint_leaves_no_folder(cli, classifier_def, h5_data,
                                                          tmp_path):
    (tmp_path / 'bad.pt').write_bytes(b'not a checkpoint')
    (tmp_path / 'calls.vcf').write_text('##fileformat=VCFv4.2\n')
    (tmp_path / 'genome.fa').write_text('>chr1\nACGT\n')
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'res', '--vep',
                    tmp_path / 'calls.vcf', '--genome', tmp_path / 'genome.fa', '--checkpoint',
                    tmp_path / 'bad.pt', '-c')
    assert code == 1 and 'bad.pt' in err
    assert not (tmp_path / 'res').exists()


def test_a_folder_with_files_keeps_its_lock_file(tmp_path):
    # the lock file of a folder in use stays: removing it under a holder could let two runs in
    root = tmp_path / 'res'
    root.mkdir()
    (root / 'notes.txt').write_text('mine')
    with results.ResultStore(root).lock():
        pass
    assert sorted(os.listdir(root)) == ['.lock', 'notes.txt']
    with results.ResultStore(root).lock():  # released: taken again
        pass


def test_a_lock_file_removed_by_its_last_holder_is_not_taken(tmp_path, monkeypatch):
    # a run that opened .lock just before the previous holder removed it must lock the new file,
    # or it and a third run would both hold the directory
    root = tmp_path / 'res'
    root.mkdir()
    flock, removed = fcntl.flock, []

    def removed_between_open_and_flock(handle, flags):
        if not removed:
            removed.append(True)
            os.remove(root / '.lock')  # the previous holder's clean-up
        return flock(handle, flags)
    monkeypatch.setattr(fcntl, 'flock', removed_between_open_and_flock)
    with results.ResultStore(root).lock():
        assert removed and os.path.exists(root / '.lock')
        with pytest.raises(ResultInUseError):
            with results.ResultStore(root).lock():
                pass
