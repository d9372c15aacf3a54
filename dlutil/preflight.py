"""Data checks before the first trial: faults of the data stop the search at once.

A fault of the data (an empty file, NaN in the inputs, a header row read as numbers, no labels,
inputs the network cannot take, a criterion that does not return a scalar, a one-shot generator)
would otherwise fail every trial one by one, or worse, look like every configuration diverging.
:func:`run` looks at the first batch of each generator the command uses (training and
validation with ``-y``, test with ``-e``, each prediction file with ``-p``), runs it through a
network built from the search's first configurations, and raises a
:class:`dlutil.errors.DataShapeError` that names the generator, the file and the value. Nothing is
recorded as a trial result.

The network's state is checked too (:func:`check_checkpointable`): checkpoints are read with
``torch.load(weights_only=True)``, so a ``Model.extra_state()`` or a module's
``get_extra_state()`` that returns, say, a numpy array would be saved by every trial and then
refused on resume or by ``-e``; it is a :class:`dlutil.errors.DefinitionError` before the first
trial instead.
"""
import io

import torch

from dlutil.data.batches import to_tensor
from dlutil.data.checks import first_batch, leaves
from dlutil.errors import DataShapeError, DefinitionError

#: configurations tried before inputs are said not to fit the network
CONFIGS_TRIED = 3
#: rows of a first batch that go through the network
ROWS = 8


def _head(tree, n=ROWS):
    if isinstance(tree, dict):
        return {k: _head(v, n) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_head(v, n) for v in tree)
    return tree[:n]


def _shape(tree):
    if isinstance(tree, dict):
        return {k: _shape(v) for k, v in tree.items()}
    return tuple(getattr(tree, 'shape', ()))


def _fits(model, name, x, y):
    """Run a few rows through the network (and the criterion when labelled)."""
    with torch.no_grad():
        y_pred = model.forward_eval(model.to_input(_head(x)))
        if y is not None:
            with model.autocast():
                model.compute_loss(to_tensor(_head(y), model.device), y_pred)
            model.label_faults.check()


def _named(error, message):
    """``error`` again, of its own class where it can be, with ``message``."""
    try:
        return type(error)(message)
    except TypeError:
        return DataShapeError(message)


def check(definition, batches, configs, device):
    """Check the first batch of each generator against the networks of ``configs``.

    Parameters
    ----------
    definition: definition.Definition
    batches: list of (name, (x, y))
        First batches from :func:`first_batch`.
    configs: list of dict
        Configurations to build the network from; the inputs fit when one of them takes every
        batch, and do not when every one that builds fails on them. A configuration whose
        ``Model`` cannot be built is left to its trial.
    device: torch.device

    Raises
    ------
    DataShapeError: naming the generator, the batch's shapes and the network's error
    """
    failures = []
    for config in configs[:CONFIGS_TRIED]:
        try:
            model = definition.Model(config, device=device)
        except DataShapeError:
            raise
        except Exception:  # a configuration's fault (or the def.py's): the trials report it
            continue
        try:
            for name, (x, y) in batches:
                try:
                    _fits(model, name, x, y)
                except DataShapeError as error:
                    raise _named(error, f'the first batch of the {name}: {error}') from None
                except Exception as error:
                    failures.append((name, config, error))
                    break
            else:
                check_checkpointable(definition, model)
                return config
        finally:
            del model
            if torch.device(device).type == 'cuda':
                torch.cuda.empty_cache()  # the trials, not this check, should hold the memory
    if not failures:
        return None
    name, config, error = failures[0]
    x, y = dict(batches)[name]
    labels = '' if y is None else f', labels {_shape(y)}'
    raise DataShapeError(
        f'the first batch of the {name} (inputs {_shape(x)}{labels}) does not fit the network '
        f'(or its criterion) of any of {len(configs[:CONFIGS_TRIED])} configurations tried; '
        f'with {config}: {type(error).__name__}: {error}')


def _loads_safely(value):
    """Whether ``value`` comes back from ``torch.save`` and ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception:
        return False
    return True


def check_checkpointable(definition, model):
    """Refuse a model whose checkpoints could not be read back: a value of its ``state_dict()``
    that ``torch.load(weights_only=True)`` refuses (tensors stay out of the test: cheap for any
    network).

    Raises
    ------
    DefinitionError: naming the def.py, the value's place in the state dict and its type
    """
    try:
        state = model.state_dict()
    except Exception:  # an extra_state() that needs a trained model: the trials will tell
        return
    plain = [(where, value) for where, value in leaves(state)
             if not isinstance(value, torch.Tensor)]
    if _loads_safely([value for _, value in plain]):
        return
    where, value = next(((where, value) for where, value in plain if not _loads_safely(value)),
                        plain[0])
    kind = type(value)
    raise DefinitionError(
        f'{definition.path}: the model\'s state holds a {kind.__module__}.{kind.__qualname__} at '
        f'state_dict(){where}, which its checkpoints could not hold: they are read back with '
        f'torch.load(weights_only=True), which takes tensors, numbers, strings, None and lists, '
        f'tuples and dicts of them; return only those from extra_state() or get_extra_state() '
        f'(a numpy array: torch.as_tensor(array))')


def run(definition, data_dir, batch_size, device, configs, hyper=False, test=False,
        pred_paths=()):
    """Every check of this module, for the generators a command line uses.

    Returns
    -------
    dict or None: the configuration that took every batch
    """
    batches = []
    if hyper:
        train, val = definition.train_val_generators(data_dir, batch_size)
        for name, generator in (('training generator (get_train_generator)', train),
                                ('validation generator', val)):
            batches.append((name, first_batch(name, generator, True, batch_size)))
    if test:
        generator = definition.generator('get_test_generator', data_dir)
        name = 'test generator (get_test_generator)'
        batches.append((name, first_batch(name, generator, True, batch_size)))
    for path in pred_paths:
        generator = definition.generator('get_pred_generator', path)
        name = f'prediction generator of {path}'
        x, _ = first_batch(name, generator, False, batch_size)
        batches.append((name, (x, None)))
    if not configs:
        return None
    return check(definition, batches, configs, device)
