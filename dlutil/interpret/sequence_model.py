"""A trained model as attribution and variant scoring see it: one-hot (n, 4, L) in, (n, tasks) out.

Models of this tool take one-hot DNA as (n, 4, L) or (n, 4, 1, L) and return logits, or a dict
with ``'y_pred_loss'`` logits. :class:`OneHotNetwork` wraps the network so it always takes
(n, 4, L) and returns the logits (n, tasks), which is what tangermeme and captum expect;
:func:`input_shape` finds the window length and layout the model was built for.
"""
import torch
from torch import nn

from dlutil.interpret.kernel_activations import device_of, main_output, network_of
from dlutil.training.tasks import ClassificationModel, MultiLabelModel

__all__ = ['OneHotNetwork', 'input_shape', 'is_probability_model', 'to_outputs']


class OneHotNetwork(nn.Module):
    """``network`` with input (n, 4, L) and output the logits, shape=(n, tasks).

    Parameters
    ----------
    network: torch.nn.Module
    shape: tuple
        The input shape of one sequence the network takes: (4, L) or (4, 1, L).
    """

    def __init__(self, network, shape):
        super().__init__()
        self.network, self.shape = network, tuple(shape)

    def forward(self, x):
        """x: torch.Tensor, shape=(n, 4, L) → logits, shape=(n, tasks)."""
        y = main_output(self.network(x.reshape(len(x), *self.shape)))
        return y.reshape(len(x), -1)


def _declared_length(model, network):
    for module in [network, *network.modules()]:
        length = getattr(module, 'seq_len', None)
        if isinstance(length, int):
            return length
    config = getattr(model, 'config', None)
    if isinstance(config, dict) and isinstance(config.get('seq_len'), int):
        return config['seq_len']
    return None


@torch.no_grad()
def input_shape(model, length=None, what='--vep'):
    """The per-sequence input shape of ``model``: (4, L) or (4, 1, L).

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    length: int or None
        The window length; None: the network's (or a submodule's) ``seq_len`` attribute, else
        the config's ``seq_len``.
    what: str
        The option named in errors.

    Raises
    ------
    ValueError: no length given or declared, or the network takes neither layout
    """
    network = network_of(model)
    length = length or _declared_length(model, network)
    if length is None:
        raise ValueError(f'{what}: the model does not say its input length (no seq_len '
                         f'attribute or config key); give it with --seq-len L')
    was_training = network.training
    network.eval()
    errors = []
    try:
        for shape in ((4, length), (4, 1, length)):
            try:
                network(torch.zeros((2, *shape), device=device_of(network)))
                return shape
            except Exception as error:  # a shape error of any kind means: not this layout
                errors.append(f'{shape}: {error}')
    finally:
        network.train(was_training)
    raise ValueError(f'{what}: the network takes neither (n, 4, {length}) nor (n, 4, 1, '
                     f'{length}) one-hot input; ' + '; '.join(errors))


def is_probability_model(model):
    """Whether the model's predictions are probabilities (classification, multi-label)."""
    return isinstance(model, (ClassificationModel, MultiLabelModel))


def to_outputs(model, logits):
    """What the model predicts from its logits (numpy, shape=(n, tasks)): probabilities for
    classification and multi-label models, the values themselves otherwise."""
    if hasattr(model, 'prediction_output'):
        return model.prediction_output(logits)
    return logits
