"""DanQ (Quang & Xie 2016) and its ready models.

Quang, D. & Xie, X. DanQ: a hybrid convolutional and recurrent deep neural network for
quantifying the function of DNA sequences. Nucleic Acids Research 44, e107 (2016).
https://doi.org/10.1093/nar/gkw226

The architecture as seqgra and Selene ship it: one convolution, a bidirectional LSTM over the
pooled positions, one hidden dense layer. Training as in the paper: RMSprop, learning rate 0.001,
batch size 100, early stopping with a patience of 5 epochs.
"""
from torch import nn

from dlutil.models.zoo import Training, check_input, check_seq_len, conv_length, pool_length, \
    ready_models


class DanQ(nn.Module):
    """DanQ: Conv(320, 26) → ReLU → MaxPool(13) → dropout → BiLSTM(320) → dropout → Dense → out.

    The bidirectional LSTM runs along the pooled positions (its two directions give 640 features
    per position); the flattened LSTM outputs feed a dense layer of ``hidden`` units with ReLU,
    then the output layer. At ``seq_len=1000``: 75 positions, 48,000 features into the dense
    layer. Selene's names (``nnet``, ``bdlstm``, ``classifier``) are kept. Selene's ``forward``
    feeds the LSTM a (positions, n, channels) tensor as batch-first, i.e. runs it across the
    batch; here it runs along the sequence, as in the paper. Input: one-hot DNA (A, C, G, T),
    shape=(n, 4, seq_len); output: logits, shape=(n, n_classes).

    Quang & Xie, Nucleic Acids Research 44, e107 (2016), https://doi.org/10.1093/nar/gkw226.

    Parameters
    ----------
    n_classes: int
        Outputs: classes, tasks or targets.
    seq_len: int
        Sequence length; at least 38.
    dropout: float
        Dropout of the pooled convolution outputs, before the LSTM.
    final_dropout: float
        Dropout of the LSTM outputs, before the dense layer.
    hidden: int
        Units of the dense layer after the LSTM.
    """

    def __init__(self, n_classes, seq_len=1000, dropout=0.2, final_dropout=0.5, hidden=925):
        super().__init__()
        self.seq_len = seq_len
        width = check_seq_len('DanQ', seq_len, self.feature_length)
        self.nnet = nn.Sequential(nn.Conv1d(4, 320, kernel_size=26), nn.ReLU(inplace=True),
                                  nn.MaxPool1d(kernel_size=13, stride=13), nn.Dropout(dropout))
        self.bdlstm = nn.LSTM(320, 320, num_layers=1, batch_first=True, bidirectional=True)
        self.classifier = nn.Sequential(nn.Dropout(final_dropout), nn.Linear(width * 640, hidden),
                                        nn.ReLU(inplace=True), nn.Linear(hidden, n_classes))

    @staticmethod
    def feature_length(seq_len):
        """Positions left after the convolution and pool (75 at 1000 bp)."""
        return pool_length(conv_length(seq_len, 26), 13)

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, seq_len) → logits, shape=(n, n_classes)."""
        check_input(x, self.seq_len, 'DanQ')
        out = self.nnet(x).transpose(1, 2)  # (n, positions, 320)
        out, _ = self.bdlstm(out)  # (n, positions, 640)
        return self.classifier(out.flatten(1))


# DanQ trained with Keras' RMSprop: its rho = 0.9 is PyTorch's alpha (whose default is 0.99)
TRAINING = Training(optimizer='rmsprop', lr=0.001, batch_size=100, options={'alpha': 0.9},
                    source='Quang & Xie 2016: RMSprop (Keras: rho 0.9), learning rate 0.001, '
                           'batch size 100, early stopping with patience 5')

DanQMultiClass, DanQMultiLabel, DanQRegression = ready_models(DanQ, TRAINING)
