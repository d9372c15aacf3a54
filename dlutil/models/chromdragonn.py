"""ChromDragoNN (Nair, Kim, Wu & Kundaje 2019) and its ready models.

Nair, S., Kim, D. S., Perricone, J. & Kundaje, A. Integrating regulatory DNA sequence and gene
expression to predict genome-wide chromatin accessibility across cellular contexts.
Bioinformatics 35, i108-i116 (2019). https://doi.org/10.1093/bioinformatics/btz352

The architecture and training settings are those of seqgra's ``torch-mc50-dna1000-chromdragonn-s1``
(adapted from ChromDragoNN's ``model_zoo/stage1/resnet.py``): a residual convolutional network
over the sequence, with convolutions of shape (k, 1) on a (n, channels, length, 1) tensor.
"""
import torch.nn.functional as F
from torch import nn

from dlutil.models.zoo import Training, check_input, check_seq_len, conv_length, pool_length, \
    ready_models


def _conv(in_channels, out_channels, kernel_size, padding):
    """A convolution along the length axis of (n, channels, length, 1), as in the seed."""
    return nn.Conv2d(in_channels, out_channels, (kernel_size, 1), stride=(1, 1),
                     padding=(padding, 0))


class ResidualBlock(nn.Module):
    """``relu(layer(x) + x)``, ``layer`` = Conv → BN, then (ReLU → Conv → BN) per further kernel.

    The seed's ``L1Block`` … ``L4Block`` are this block with kernels (3, 3), (7, 7), (7, 3, 3)
    and (7, 7); the attribute names (``conv1``, ``bn1``, ..., ``layer``) are the seed's.

    Parameters
    ----------
    channels: int
        Input and output channels.
    kernel_sizes: tuple of int
        Odd kernel lengths, padded to keep the length.

    Shapes
    ------
    Input and output: torch.Tensor, shape=(n, channels, length, 1).
    """

    def __init__(self, channels, kernel_sizes):
        super().__init__()
        modules = []
        for i, kernel_size in enumerate(kernel_sizes, 1):
            conv = _conv(channels, channels, kernel_size, kernel_size // 2)
            bn = nn.BatchNorm2d(channels)
            setattr(self, f'conv{i}', conv)
            setattr(self, f'bn{i}', bn)
            modules += ([nn.ReLU(inplace=True)] if modules else []) + [conv, bn]
        self.layer = nn.Sequential(*modules)

    def forward(self, x):
        out = self.layer(x)
        out += x
        return F.relu(out)


BLOCK_KERNELS = ((64, (3, 3)), (128, (7, 7)), (200, (7, 3, 3)), (200, (7, 7)))


class ChromDragoNN(nn.Module):
    """ChromDragoNN's stage-1 residual network.

    Two Conv(3) → BN → ReLU (48, 64 channels); ``blocks[0]`` residual blocks of 64 channels;
    Conv(3) → BN → ReLU to 128 channels; ``blocks[1]`` blocks of 128; max-pool 3; a 1-wide Conv
    padded by 3 → BN → ReLU to 200 channels; ``blocks[2]`` blocks of 200; max-pool 4;
    ``blocks[3]`` blocks of 200; Conv(7) padded by 4 → BN → ReLU; max-pool 4; then two dense
    layers of ``hidden`` units (dense → BatchNorm1d → ReLU → dropout) and the output. The
    attribute names are the seed's, so its ``state_dict`` loads. At ``seq_len=1000`` and 50
    classes: 8,274,146 parameters (21 positions × 200 channels flattened).

    Input: one-hot DNA (A, C, G, T), shape=(n, 4, seq_len), viewed as (n, 4, seq_len, 1) inside
    (the seed permutes an (n, seq_len, 4) input to that layout); output: logits,
    shape=(n, n_classes).

    Nair et al., Bioinformatics 35, i108-i116 (2019), https://doi.org/10.1093/bioinformatics/btz352.

    Parameters
    ----------
    n_classes: int
        Outputs: classes, tasks or targets.
    seq_len: int
        Sequence length; at least 6.
    dropout: float
        Dropout after each hidden dense layer.
    hidden: int
        Units of each hidden dense layer.
    blocks: tuple of 4 int
        Residual blocks in each of the four stages.
    """

    def __init__(self, n_classes, seq_len=1000, dropout=0.3, hidden=1000, blocks=(2, 2, 2, 2)):
        super().__init__()
        self.seq_len = seq_len
        width = check_seq_len('ChromDragoNN', seq_len, self.feature_length)
        if len(blocks) != 4:
            raise ValueError(f'ChromDragoNN: blocks must give 4 numbers of residual blocks, '
                             f'got {blocks!r}')
        self.dropout = dropout
        self.blocks = tuple(blocks)
        self.conv1 = _conv(4, 48, 3, 1)
        self.bn1 = nn.BatchNorm2d(48)
        self.conv2 = _conv(48, 64, 3, 1)
        self.bn2 = nn.BatchNorm2d(64)
        self.prelayer = nn.Sequential(self.conv1, self.bn1, nn.ReLU(inplace=True),
                                      self.conv2, self.bn2, nn.ReLU(inplace=True))
        for i, (count, (channels, kernels)) in enumerate(zip(self.blocks, BLOCK_KERNELS), 1):
            setattr(self, f'layer{i}', nn.Sequential(
                *[ResidualBlock(channels, kernels) for _ in range(count)]))
        self.c1to2 = _conv(64, 128, 3, 1)
        self.b1to2 = nn.BatchNorm2d(128)
        self.l1tol2 = nn.Sequential(self.c1to2, self.b1to2, nn.ReLU(inplace=True))
        self.c2to3 = nn.Conv2d(128, 200, (1, 1), padding=(3, 0))
        self.b2to3 = nn.BatchNorm2d(200)
        self.l2tol3 = nn.Sequential(self.c2to3, self.b2to3, nn.ReLU(inplace=True))
        self.maxpool1 = nn.MaxPool2d((3, 1))
        self.maxpool2 = nn.MaxPool2d((4, 1))
        self.maxpool3 = nn.MaxPool2d((4, 1))
        self.fc1 = nn.Linear(width * 200, hidden)
        self.bn4 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.bn5 = nn.BatchNorm1d(hidden)
        self.fc3 = nn.Linear(hidden, n_classes)
        self.conv3 = _conv(200, 200, 7, 4)
        self.bn3 = nn.BatchNorm2d(200)
        self.flayer = nn.Sequential(self.conv3, self.bn3, nn.ReLU(inplace=True))

    @staticmethod
    def feature_length(seq_len):
        """Positions left after the convolutions and pools (21 at 1000 bp)."""
        length = pool_length(seq_len, 3)  # the convolutions before it keep the length
        length = pool_length(conv_length(length, 1, padding=3), 4)
        return pool_length(conv_length(length, 7, padding=4), 4)

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, seq_len) → logits, shape=(n, n_classes)."""
        check_input(x, self.seq_len, 'ChromDragoNN')
        out = self.prelayer(x.unsqueeze(-1))  # (n, 4, seq_len, 1)
        out = self.layer1(out)
        out = self.layer2(self.l1tol2(out))
        out = self.maxpool1(out)
        out = self.layer3(self.l2tol3(out))
        out = self.maxpool2(out)
        out = self.layer4(out)
        out = self.maxpool3(self.flayer(out)).flatten(1)
        out = F.dropout(F.relu(self.bn4(self.fc1(out))), p=self.dropout, training=self.training)
        out = F.dropout(F.relu(self.bn5(self.fc2(out))), p=self.dropout, training=self.training)
        return self.fc3(out)


TRAINING = Training(optimizer='adam', lr=0.002, batch_size=256,
                    source='seqgra torch-mc50-dna1000-chromdragonn-s1: Adam, learning rate '
                           '0.002, batch size 256, early stopping')

ChromDragoNNMultiClass, ChromDragoNNMultiLabel, ChromDragoNNRegression = ready_models(
    ChromDragoNN, TRAINING)
