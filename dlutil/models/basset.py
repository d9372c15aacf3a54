"""Basset (Kelley, Snoek & Rinn 2016) and its ready models.

Kelley, D. R., Snoek, J. & Rinn, J. L. Basset: learning the regulatory code of the accessible
genome with deep convolutional neural networks. Genome Research 26, 990-999 (2016).
https://doi.org/10.1101/gr.200535.115

The architecture and training settings are those of seqgra's ``torch-mc50-dna1000-basset-s1``
(adapted from PyBasset): three convolutions with batch norm, two hidden dense layers, Adam with
gradient-norm clipping.
"""
from torch import nn

from dlutil.models.zoo import Training, check_input, check_seq_len, conv_length, pool_length, \
    ready_models


def _conv_block(in_channels, out_channels, kernel_size, pool):
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel_size),
                         nn.BatchNorm1d(out_channels), nn.ReLU(), nn.MaxPool1d(pool))


class Basset(nn.Module):
    """Basset: three (Conv → BatchNorm → ReLU → MaxPool) layers, two dense layers, output.

    Convolutions of 300 × 19, 200 × 11 and 200 × 7 filters, max-pools of 3, 4 and 4; dense layers
    of ``hidden`` units, each followed by ReLU and dropout ``dropout``. The attribute names are
    the seed's (``layer1``…``layer3``, ``fc1``…``fc3``), so its ``state_dict`` loads. At
    ``seq_len=1000`` and 50 classes: 5,616,950 parameters (18 positions × 200 channels flattened).
    Input: one-hot DNA (A, C, G, T), shape=(n, 4, seq_len); output: logits, shape=(n, n_classes).

    Kelley et al., Genome Research 26, 990-999 (2016), https://doi.org/10.1101/gr.200535.115.

    Parameters
    ----------
    n_classes: int
        Outputs: classes, tasks or targets.
    seq_len: int
        Sequence length; at least 168.
    dropout: float
        Dropout after each hidden dense layer.
    hidden: int
        Units of each hidden dense layer.
    """

    def __init__(self, n_classes, seq_len=1000, dropout=0.3, hidden=1000):
        super().__init__()
        self.seq_len = seq_len
        width = check_seq_len('Basset', seq_len, self.feature_length)
        self.layer1 = _conv_block(4, 300, 19, 3)
        self.layer2 = _conv_block(300, 200, 11, 4)
        self.layer3 = _conv_block(200, 200, 7, 4)
        self.fc1 = nn.Linear(width * 200, hidden)
        self.relu4 = nn.ReLU()
        self.dropout1 = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(hidden, hidden)
        self.relu5 = nn.ReLU()
        self.dropout2 = nn.Dropout(p=dropout)
        self.fc3 = nn.Linear(hidden, n_classes)

    @staticmethod
    def feature_length(seq_len):
        """Positions left after the convolutions and pools (18 at 1000 bp)."""
        length = seq_len
        for kernel_size, pool in ((19, 3), (11, 4), (7, 4)):
            length = pool_length(conv_length(length, kernel_size), pool)
        return length

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, seq_len) → logits, shape=(n, n_classes)."""
        check_input(x, self.seq_len, 'Basset')
        x = self.layer3(self.layer2(self.layer1(x))).flatten(1)
        x = self.dropout1(self.relu4(self.fc1(x)))
        x = self.dropout2(self.relu5(self.fc2(x)))
        return self.fc3(x)


TRAINING = Training(optimizer='adam', lr=1e-4, grad_clip_norm=0.5, batch_size=100,
                    source='seqgra torch-mc50-dna1000-basset-s1: Adam, learning rate 0.0001, '
                           'gradient norm clipped to 0.5, batch size 100, early stopping')

BassetMultiClass, BassetMultiLabel, BassetRegression = ready_models(Basset, TRAINING)
