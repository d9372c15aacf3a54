"""A trained model as attribution and variant scoring see it: one-hot (n, 4, L) in, (n, tasks) out.

Models of this tool take one-hot DNA as (n, 4, L) or (n, 4, 1, L) and return logits, or a dict
with ``'y_pred_loss'`` logits. :class:`OneHotNetwork` wraps a model so it always takes (n, 4, L)
and returns the logits (n, tasks), which is what tangermeme and captum expect; it scores through
:func:`dlutil.training.evaluation.forward`, with the model's own settings. :func:`input_shape`
finds the window length and layout the model was built for, and refuses a model that is not one
of one-hot DNA.
"""
import torch
from torch import nn

from dlutil.training.evaluation import evaluating, forward, main_output, model_input, \
    network_of
from dlutil.training.tasks import ClassificationModel, MultiLabelModel

__all__ = ['OneHotNetwork', 'input_shape', 'log_odds_kind', 'one_hot_input']

ONE_HOT = 'one-hot DNA, shape (n, 4, L) or (n, 4, 1, L)'


def one_hot_input(model, x):
    """One-hot windows the tool builds itself (float32, N as 0.25) as the model's inputs.

    They are moved by the model's ``to_input``, then cast to its ``input_dtype`` when that is a
    floating type, as integer one-hot data would be.
    """
    x = model_input(model, torch.as_tensor(x))
    dtype = getattr(model, 'input_dtype', None)
    if isinstance(x, torch.Tensor) and x.is_floating_point() and dtype is not None \
            and dtype.is_floating_point and x.dtype != dtype:
        x = x.to(dtype)
    return x


class OneHotNetwork(nn.Module):
    """``model`` with input (n, 4, L) and output the logits, shape=(n, tasks).

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    shape: tuple
        The input shape of one sequence the network takes: (4, L) or (4, 1, L).
    strand_average, autocast:
        As :func:`dlutil.training.evaluation.forward` takes them (default: the model's own).
    """

    def __init__(self, model, shape, strand_average=None, autocast=True):
        super().__init__()
        self.model, self.shape = model, tuple(shape)
        self.network = network_of(model)  # a submodule: .eval() and .parameters() reach it
        self.strand_average, self.autocast = strand_average, autocast

    def forward(self, x, unknown=None):
        """x: torch.Tensor, shape=(n, 4, L) → logits, shape=(n, tasks).

        ``unknown`` (same shape), when given, is added to x first: the columns that are not a
        base (N as 0.25, padding as 0; see :func:`dlutil.interpret.attributions.split_bases`),
        so tangermeme edits and shuffles the bases while the model sees its input as encoded.
        """
        if unknown is not None:
            x = x + unknown.to(x)
        x = one_hot_input(self.model, x.reshape(len(x), *self.shape))
        y = main_output(forward(self.model, x, self.strand_average, self.autocast))
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


def _first_layer(network):
    """The first module with weights of its own, for messages."""
    return next((module for module in network.modules()
                 if any(True for _ in module.parameters(recurse=False))), None)


def input_shape(model, length=None, what='--vep', positional=False):
    """The per-sequence input shape of ``model``: (4, L) or (4, 1, L).

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    length: int or None
        The window length; None: the network's (or a submodule's) ``seq_len`` attribute, else
        the config's ``seq_len``.
    what: str
        The option named in errors.
    positional: bool
        Accept outputs of shape (n, tasks, positions) too (``--vep-aggregate-positions``).

    Raises
    ------
    ValueError: no length given or declared, the network takes neither layout, or it does not
        return one row of outputs per window (a model of other inputs than one-hot DNA)
    """
    network = network_of(model)
    length = length or _declared_length(model, network)
    if length is None:
        raise ValueError(f'{what}: the model does not say its input length (no seq_len '
                         f'attribute or config key); give it with --seq-len L')
    errors = []
    with evaluating(network):
        for shape in ((4, length), (4, 1, length)):
            x = torch.zeros((2, *shape))
            try:
                y = main_output(forward(model, one_hot_input(model, x), strand_average=False))
            except Exception as error:  # a shape error of any kind means: not this layout
                errors.append(f'{shape}: {error}')
                continue
            dims = (1, 2, 3) if positional else (1, 2)
            if not isinstance(y, torch.Tensor) or y.dim() not in dims or len(y) != 2:
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                first = _first_layer(network)
                hint = ('; a profile model\'s positional outputs, shape (n, tasks, positions), '
                        'are scored with --vep-aggregate-positions'
                        if what == '--vep' and isinstance(y, torch.Tensor) and y.dim() == 3
                        else '')
                raise ValueError(
                    f'{what} needs a model of {ONE_HOT}, returning one row of outputs per '
                    f'window, shape (n, tasks); this network maps windows of shape '
                    f'{tuple(x.shape)} to outputs of shape {got}'
                    + (f' (its first layer is {first})' if first is not None else '') + hint)
            return shape
    raise ValueError(f'{what}: the network takes neither (n, 4, {length}) nor (n, 4, 1, '
                     f'{length}) one-hot input; ' + '; '.join(errors))


def log_odds_kind(model):
    """How a model's logits give log-odds: ``'softmax'`` (one class per example),
    ``'sigmoid'`` (independent tasks), or None (the outputs are not probabilities)."""
    if isinstance(model, ClassificationModel):
        return 'softmax'
    if isinstance(model, MultiLabelModel):
        return 'sigmoid'
    return None
