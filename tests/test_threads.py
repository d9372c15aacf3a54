"""The default number of torch CPU threads: OMP_NUM_THREADS, else the idle cores, at most 4."""
import logging

import pytest
import torch

from dlutil.threads import MAX_THREADS, default_threads


@pytest.mark.parametrize('cores, load, workers, expected', [
    (2, 0.1, 1, 2),      # an idle laptop: both cores
    (2, 1.2, 1, 1),      # another process busy on one core: one thread
    (2, 7.9, 1, 1),      # a crowded shared machine: never fewer than one
    (64, 0.0, 1, MAX_THREADS),  # a big idle node: small networks gain little beyond 4
    (64, 61.0, 1, 3),
    (8, 0.0, 2, 2),      # workers share the threads out
    (8, 0.0, 8, 1),
])
def test_idle_cores_at_most_four(cores, load, workers, expected):
    threads, why = default_threads(workers, environ={}, cores=cores, load=load)
    assert threads == expected
    assert why == f'{cores} cores, load {load:.1f}'


def test_omp_num_threads_wins_and_is_shared_between_workers(caplog):
    assert default_threads(1, {'OMP_NUM_THREADS': '6'}, cores=2, load=5) == \
        (6, 'OMP_NUM_THREADS=6')
    assert default_threads(4, {'OMP_NUM_THREADS': '6'}, cores=2, load=5)[0] == 1
    logger = logging.getLogger('dlutil')
    logger.addHandler(caplog.handler)
    try:
        assert default_threads(1, {'OMP_NUM_THREADS': 'many'}, cores=8, load=0)[0] == 4
    finally:
        logger.removeHandler(caplog.handler)
    assert "OMP_NUM_THREADS='many' is not a positive integer: ignored" in caplog.text


def test_the_cli_uses_and_reports_the_default(cli, classifier_def, h5_data, tmp_path,
                                              monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    torch.set_num_threads(2)
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-y', '-ep', 1,
                    '-bs', 32, '--seed', 0, '-c')
    assert code == 0, err
    assert 'torch CPU threads per trial: 1 (OMP_NUM_THREADS=1; --threads T to choose)' in err
    assert torch.get_num_threads() == 1
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '-e', '-c',
                    '--threads', 2)
    assert code == 0, err
    assert 'torch CPU threads' not in err and torch.get_num_threads() == 2
