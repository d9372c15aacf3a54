"""Every reader of .pt files refuses a file that would run code while loading (weights only)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT
from dlutil import torchfile
from dlutil.errors import CorruptFileError, UnsafeFileError
from dlutil.models import definetti
from dlutil.search import results
from dlutil.training.networks import ConvClassificationNetwork
from dlutil.training.tasks import ClassificationModel

MARK = 'arbitrary code ran while loading'


class Payload:
    """Pickled as a call of ``os.system``: what a crafted checkpoint would do."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f'echo "{MARK}" > {self.flag}',))


@pytest.fixture
def payload(tmp_path):
    """A .pt file whose unpickling would write ``flag``; returns (path, flag)."""
    flag = tmp_path / 'ran.txt'
    path = tmp_path / 'net.pt'
    torch.save({'format': definetti.FORMAT, 'model': {'network': {}}, 'config': {},
                'weights': {}, 'x': Payload(str(flag))}, path)
    return path, flag


class Tiny(ClassificationModel):
    def init_model(self):
        network = ConvClassificationNetwork(
            torch.nn.Sequential(torch.nn.Conv2d(4, 2, (1, 3)), torch.nn.AdaptiveMaxPool2d(1)),
            torch.nn.Linear(2, 2))
        super().init_model(network, torch.optim.SGD(network.parameters(), lr=0.1))


def test_the_loader_refuses_a_payload_by_name(payload):
    path, flag = payload
    with pytest.raises(UnsafeFileError, match=r'net\.pt holds Python objects besides tensors'):
        torchfile.load(str(path), 'checkpoint')
    assert not flag.exists()


@pytest.mark.parametrize('reader', ['checkpoint', 'weights', 'definetti'])
def test_every_reader_refuses_a_payload(payload, reader):
    path, flag = payload
    with pytest.raises(UnsafeFileError):
        if reader == 'checkpoint':
            results.load_checkpoint(str(path))
        elif reader == 'weights':
            Tiny({}, device='cpu').load_weights(str(path))
        else:
            definetti.test([[0.0]], str(path)[:-3])
    assert not flag.exists()


def test_a_truncated_file_is_corrupt_not_unsafe(tmp_path):
    path = tmp_path / 'cut.pt'
    torch.save({'w': torch.ones(100)}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CorruptFileError) as caught:
        torchfile.load(str(path), 'checkpoint')
    assert not isinstance(caught.value, UnsafeFileError) and 'cut.pt' in str(caught.value)


def test_the_command_line_refuses_a_payload_checkpoint(payload, tmp_path):
    path, flag = payload
    defpy = tmp_path / 'def.py'
    defpy.write_text(open(os.path.join(ROOT, 'tests', 'curve_def.py')).read())
    np.save(tmp_path / 'x.npy', np.zeros((8, 1), np.float32))
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'main.py'), '-f', str(defpy),
                           '-d', str(tmp_path), '-r', str(tmp_path / 'r'), '-e',
                           '--checkpoint', str(path), '-c'],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and 'Traceback' not in done.stderr
    assert 'net.pt' in done.stderr and 'besides tensors' in done.stderr, done.stderr
    assert not flag.exists()
