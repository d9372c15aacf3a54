"""Two small networks of the seed's examples: convolutional features, flattened, a classifier head."""
import torch
from torch import nn


class ConvClassificationNetwork(nn.Module):
    """``features`` on (n, depth, height, width) → flatten → ``classifier`` → logits (n, C).

    Returns ``{'y_pred': softmax(logits), 'y_pred_loss': logits}``.
    """

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        logits = self.classifier(self.features(x).flatten(1))
        return {'y_pred': torch.softmax(logits, dim=1), 'y_pred_loss': logits}


class ConvRegressionNetwork(nn.Module):
    """``features`` on (n, depth, height, width) → flatten → ``regressor``.

    A single target comes out with shape (n,); several with shape (n, targets).
    """

    def __init__(self, features, regressor):
        super().__init__()
        self.features, self.regressor = features, regressor

    def forward(self, x):
        out = self.regressor(self.features(x).flatten(1))
        return out.squeeze(1) if out.dim() == 2 and out.shape[1] == 1 else out
