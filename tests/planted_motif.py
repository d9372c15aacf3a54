"""A tiny model with a planted motif, its def.py, and a synthetic genome, for the variant and
attribution tests."""
import textwrap

import numpy as np

MOTIF = 'TGACTCA'      # task 0 fires on it (AP-1)
MOTIF2 = 'GGGCGGA'     # task 1 fires on it
LENGTH = 60

PLANTED_DEF = textwrap.dedent('''
    import os

    import numpy as np
    import torch
    from torch import nn

    from base_model import MultiLabelModel
    from batch_generator import H5pyBatchGenerator

    CLASS_NAMES = ['ap1', 'gc']


    def one_hot(seq):
        return np.array([[float(b == c) for b in seq] for c in 'ACGT'], np.float32)


    class Net(nn.Module):
        """Two hand-set kernels: logit t is +1 where motif t occurs exactly, -2 where it does
        not, so a variant that destroys the motif lowers its logit by 3."""

        def __init__(self, seq_len={length}, background=0.0):
            super().__init__()
            self.background = background
            self.seq_len = seq_len
            self.conv = nn.Conv1d(4, 2, 7)
            self.relu = nn.ReLU()
            self.pool = nn.MaxPool1d(seq_len - 6)
            self.linear = nn.Linear(2, 2)
            with torch.no_grad():
                for k, motif in enumerate(({motif!r}, {motif2!r})):
                    self.conv.weight[k] = torch.tensor(one_hot(motif) * 2 - 1)
                self.conv.bias[:] = -5.0
                self.linear.weight[:] = torch.eye(2) * 1.5
                self.linear.bias[:] = -2.0
            # weak random kernels averaged over the sequence: attributions off the motif too
            self.noise = nn.Conv1d(4, 8, 5)
            with torch.no_grad():
                self.noise.weight.copy_(torch.randn(8, 4, 5, generator=torch.Generator().manual_seed(0)))
            self.noise_relu = nn.ReLU()

        def forward(self, x):
            y = self.linear(self.pool(self.relu(self.conv(x))).flatten(1))
            if self.background:
                y = y + self.background * self.noise_relu(self.noise(x)).mean((1, 2))[:, None]
            return y


    class Model(MultiLabelModel):
        def init_model(self):
            network = Net(background=self.config.get('background', 0.0))
            super().init_model(network, optimizer=torch.optim.SGD(network.parameters(), lr=0))


    def get_test_generator(data_dir):
        return H5pyBatchGenerator(os.path.join(data_dir, 'test.h5'))


    def get_config():
        return {{}}
''').format(length=LENGTH, motif=MOTIF, motif2=MOTIF2)


def load_planted(tmp_path, background=0.0):
    """The def.py module (written under ``tmp_path``) and a ``Model`` on the CPU; with
    ``background``, weak random kernels add to the logits (attributions everywhere)."""
    from dlutil.definition import load_module
    path = tmp_path / 'planted_def.py'
    path.write_text(PLANTED_DEF)
    module = load_module(str(path))
    return module, module.Model({'background': background}, device='cpu')


def random_dna(rng, n):
    return ''.join(rng.choice(list('ACGT'), n))


def planted_sequences(n, length=LENGTH, seed=0, motif=MOTIF, at=None):
    """``n`` random sequences, ``motif`` planted at ``at`` (default a random place) in each."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        s = list(random_dna(rng, length))
        start = rng.integers(0, length - len(motif)) if at is None else at
        s[start:start + len(motif)] = motif
        seqs.append(''.join(s))
    return seqs
