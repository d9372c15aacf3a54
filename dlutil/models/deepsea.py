"""DeepSEA (Zhou & Troyanskaya 2015) and its ready models.

Zhou, J. & Troyanskaya, O. G. Predicting effects of noncoding variants with deep learning-based
sequence model. Nature Methods 12, 931-934 (2015). https://doi.org/10.1038/nmeth.3547

The architecture and training settings are those of seqgra's ``torch-mc50-dna1000-deepsea-s1``
(adapted from PyDeepSEA): three convolutions, one hidden dense layer, SGD with momentum.
"""
from torch import nn

from dlutil.models.zoo import Training, check_input, check_seq_len, conv_length, pool_length, \
    ready_models


class DeepSEA(nn.Module):
    """DeepSEA: Conv(320, 8) → pool 4 → Conv(480, 8) → pool 4 → Conv(960, 8) → Dense(925) → out.

    Every convolution is followed by ReLU; dropout ``dropout`` after each of the two max-pools
    and ``final_dropout`` after the third convolution; ReLU after the hidden dense layer. The
    attribute names are the seed's, so its ``state_dict`` loads. At ``seq_len=1000`` and 50
    classes: 52,038,425 parameters (the flattened features are 53 positions × 960 channels).
    Input: one-hot DNA (A, C, G, T), shape=(n, 4, seq_len); output: logits, shape=(n, n_classes).

    Zhou & Troyanskaya, Nature Methods 12, 931-934 (2015), https://doi.org/10.1038/nmeth.3547.

    Parameters
    ----------
    n_classes: int
        Outputs: classes, tasks or targets.
    seq_len: int
        Sequence length; at least 163.
    dropout: float
        Dropout after each max-pool.
    final_dropout: float
        Dropout after the third convolution.
    hidden: int
        Units of the hidden dense layer.
    """

    def __init__(self, n_classes, seq_len=1000, dropout=0.2, final_dropout=0.5, hidden=925):
        super().__init__()
        self.seq_len = seq_len
        width = check_seq_len('DeepSEA', seq_len, self.feature_length)
        self.conv1 = nn.Conv1d(in_channels=4, out_channels=320, kernel_size=8)
        self.conv2 = nn.Conv1d(in_channels=320, out_channels=480, kernel_size=8)
        self.conv3 = nn.Conv1d(in_channels=480, out_channels=960, kernel_size=8)
        self.maxpool = nn.MaxPool1d(kernel_size=4, stride=4)
        self.drop1 = nn.Dropout(p=dropout)
        self.drop2 = nn.Dropout(p=final_dropout)
        self.linear1 = nn.Linear(width * 960, hidden)
        self.linear2 = nn.Linear(hidden, n_classes)
        self.relu = nn.ReLU()

    @staticmethod
    def feature_length(seq_len):
        """Positions left after the convolutions and pools (53 at 1000 bp)."""
        length = pool_length(conv_length(seq_len, 8), 4)
        length = pool_length(conv_length(length, 8), 4)
        return conv_length(length, 8)

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, seq_len) → logits, shape=(n, n_classes)."""
        check_input(x, self.seq_len, 'DeepSEA')
        x = self.drop1(self.maxpool(self.relu(self.conv1(x))))
        x = self.drop1(self.maxpool(self.relu(self.conv2(x))))
        x = self.drop2(self.relu(self.conv3(x)))
        return self.linear2(self.relu(self.linear1(x.flatten(1))))


TRAINING = Training(optimizer='sgd', lr=0.01, momentum=0.9, batch_size=100,
                    source='seqgra torch-mc50-dna1000-deepsea-s1: SGD, learning rate 0.01, '
                           'momentum 0.9, batch size 100, early stopping')

DeepSEAMultiClass, DeepSEAMultiLabel, DeepSEARegression = ready_models(DeepSEA, TRAINING)
