"""defiNETti's Python API, ``train()`` and ``test()``, on the core's training step.

``train`` feeds batches simulated on the fly (:class:`batch_generator.SimulationBatchGenerator`,
``sim_threads`` processes, ``queue_capacity`` examples ahead) to
:meth:`base_model.BaseModel.train_epoch`, ``verbosity`` batches at a time, with Adam (lr 1e-3)
as defiNETti; ``test`` runs a saved network on data. The arguments, their defaults and their
meaning are defiNETti's; where the PyTorch port differs:

- ``save_path`` is a base name, as in defiNETti: the network is saved to ``save_path + '.pt'``
  (one file: the layer lists, shapes and weights, read with ``torch.load(weights_only=True)``;
  for a custom ``network_function`` the weights alone: give ``test`` the same module as
  ``network_function`` to load them into. No file is ever unpickled beyond tensors).
- ``network_function`` is an ``nn.Module`` mapping a batch, shape=(n, *input_shape), to
  (n, outputs) (or a dict with ``'y_pred_loss'`` logits).
- a ``loss`` or ``accuracy`` callable takes tensors ``(y_pred, y_true)``, defiNETti's order, and
  returns a scalar tensor; ``y_pred`` is the log-probabilities of a softmax head (defiNETti's
  softmax layer is a log-softmax) and the output of any other.
- the loss and accuracy printed every ``verbosity`` batches, and written to
  ``training_summary``, are their means over those batches (defiNETti reported the last batch
  alone); the batch count is the number of batches trained so far.
- new keywords: ``seed`` makes a run reproducible (the weights and every simulation derive
  from it); ``device`` is CUDA when available unless given; ``learning_rate`` of Adam (1e-3,
  defiNETti's fixed value).
"""
import itertools
import logging
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from dlutil import rng, torchfile
from dlutil.files import atomic_write
from dlutil.simulation.generator import SimulationBatchGenerator
from dlutil.training.model import BaseModel
from dlutil.data.batches import resolve_device

from dlutil.models.exchangeable import ExchangeableNetwork

log = logging.getLogger('dlutil.exchangeable')
FORMAT = 'dlutil-exchangeable-1'


def log_probabilities(y_pred_t):
    """What a loss sees: log-probabilities of a softmax head (a dict), else the output."""
    if isinstance(y_pred_t, dict):
        return F.log_softmax(y_pred_t['y_pred_loss'].float(), dim=1)
    return y_pred_t


def cross_entropy(y_pred_t, y_true_t):
    """defiNETti's "cross-ent": −Σ y·log p per example, averaged; labels one-hot or
    probabilities, shape=(n, classes). ``y_pred_t``: logits or log-probabilities."""
    return -(y_true_t * F.log_softmax(y_pred_t, dim=1)).sum(dim=1).mean()


def l2(y_pred_t, y_true_t):
    """defiNETti's "l2": Σ (y − ŷ)² per example, averaged over the batch."""
    return ((y_true_t - y_pred_t) ** 2).sum(dim=1).mean()


def classification_accuracy(y_pred_t, y_true_t):
    """Fraction of examples whose arg-max output is the arg-max label."""
    return (y_pred_t.argmax(dim=1) == y_true_t.argmax(dim=1)).float().mean()


LOSSES = {'cross-ent': cross_entropy, 'l2': l2}


class DefinettiModel(BaseModel):
    """The model ``train()`` trains: defiNETti's losses and accuracy on the core's step.

    ``config``: ``network`` (an ``nn.Module``), ``loss`` ('cross-ent', 'l2' or a callable),
    ``accuracy`` ('classification', None or a callable), ``lr``.
    """

    def init_model(self):
        network, loss = self.config['network'], self.config['loss']
        self.loss_function = LOSSES[loss] if isinstance(loss, str) else loss
        self.accuracy = self.config['accuracy']
        optimizer = torch.optim.Adam(network.parameters(), lr=self.config.get('lr', 1e-3))
        super().init_model(network, self.criterion_of, optimizer)

    def criterion_of(self, y_true_t, y_pred_t):
        return self.loss_function(log_probabilities(y_pred_t), y_true_t.to(torch.float32))

    def train_metrics(self, y_true, y_pred):
        y_true_t = torch.as_tensor(np.asarray(y_true, np.float32))
        y_pred_t = ({k: torch.as_tensor(v) for k, v in y_pred.items()}
                    if isinstance(y_pred, dict) else torch.as_tensor(y_pred))
        with torch.no_grad():
            if self.accuracy is None:
                value = self.criterion_of(y_true_t, y_pred_t)
            elif self.accuracy == 'classification':
                value = classification_accuracy(log_probabilities(y_pred_t), y_true_t)
            else:
                value = self.accuracy(log_probabilities(y_pred_t), y_true_t)
        return {'accuracy': float(value)}

    eval_metrics = train_metrics

    def get_hyperband_reward(self, result):
        return -result['val_loss']


def _check_arguments(loss, accuracy, network_function, counts):
    problems = []
    if not (callable(loss) or loss in LOSSES):
        problems.append(f"loss must be 'cross-ent', 'l2' or a function (y_pred, y_true) -> "
                        f"scalar tensor, got {loss!r}")
    if not (accuracy is None or callable(accuracy) or accuracy == 'classification'):
        problems.append(f"accuracy must be 'classification', None or a function (y_pred, "
                        f"y_true) -> scalar tensor, got {accuracy!r}")
    if network_function is not None and not isinstance(network_function, nn.Module):
        problems.append(f'network_function must be a torch.nn.Module mapping (n, *input_shape) '
                        f'to (n, outputs), got {type(network_function).__name__}')
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f'{name} must be a positive integer, got {value!r}')
    if problems:
        raise ValueError('train: ' + '; '.join(problems))


def _logging_to(logfile):
    """A handler for ``logfile`` ('.' is stderr), or None."""
    if logfile is None:
        return None
    handler = (logging.StreamHandler(sys.stderr) if logfile == '.'
               else logging.FileHandler(logfile))
    handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
    return handler


def model_file(path):
    """``save_path``/``model_path`` as the file it names: ``path + '.pt'`` unless it ends so."""
    path = os.path.expanduser(os.fspath(path))
    return path if path.endswith('.pt') else path + '.pt'


def train(input_shape, output_shape, simulator, phi_net=[('fc', 1024), ('fc', 1024)],
          g=('max',), h_net=[('fc', 512), ('softmax',)], network_function=None,
          loss='cross-ent', accuracy='classification', num_batches=20000, batch_size=50,
          queue_capacity=250, verbosity=100, training_threads=1, sim_threads=1,
          save_path=None, training_summary=None, logfile=None, seed=None, device=None,
          learning_rate=1e-3, sim_timeout=600):
    """Train an exchangeable network on simulations made on the fly (defiNETti's ``train``).

    Parameters
    ----------
    input_shape: tuple of int
        Shape of the simulator's data, (rows, positions) or (rows, positions, channels);
        invariance is over the rows.
    output_shape: tuple of int
        Shape of its label, (outputs,): classes (one-hot labels) or values.
    simulator: callable
        ``simulator() -> (data, label)`` drawing from ``numpy.random``; see
        :class:`batch_generator.SimulationBatchGenerator`. On Linux the simulation processes
        are forked: any function works, defined in a plain script (no main guard needed), a
        notebook or a module. Elsewhere they are spawned: it must be a module-level function
        (or a ``functools.partial`` of one) and a script needs ``if __name__ == '__main__':``;
        a combination that cannot work is refused in one line saying what to change.
    phi_net, g, h_net: layer lists
        The network in defiNETti's syntax (see :mod:`models.exchangeable`).
    network_function: torch.nn.Module or None
        Your own network; when given, ``phi_net``, ``g`` and ``h_net`` are ignored.
    loss: 'cross-ent', 'l2' or callable
        ``loss(y_pred, y_true) -> scalar tensor`` for your own.
    accuracy: 'classification', None or callable
        0-1 accuracy, the loss itself (None), or ``accuracy(y_pred, y_true)``.
    num_batches, batch_size: int
        Batches to train, and examples per batch.
    queue_capacity: int
        Examples the simulation processes may hold ready ahead of training.
    verbosity: int
        Print the loss and accuracy every ``verbosity`` batches.
    training_threads, sim_threads: int
        torch threads for training; simulation processes.
    save_path: str or None
        Base name to save the network to (``save_path + '.pt'``); None saves nothing.
    training_summary: str or None
        File of ``<batch> <loss> <accuracy>`` lines, one every ``verbosity`` batches.
    logfile: str or None
        Extra training information (simulation speed, time spent waiting for simulations);
        '.' is stderr.
    seed: int or None
        Seed of the weights and of the simulations; None draws one (logged).
    device: str, torch.device or None
        None: CUDA when available, else the CPU.
    learning_rate: float
        Of Adam (defiNETti's is fixed at 1e-3).
    sim_timeout: float or None
        Seconds without a simulated example after which the simulator is reported as hung, by
        name, and training stops (None: wait forever).

    Returns
    -------
    numpy.ndarray, shape=(reports, 3)
        The training summary: batches trained, mean loss, mean accuracy.
    """
    counts = {'num_batches': num_batches, 'batch_size': batch_size,
              'queue_capacity': queue_capacity, 'verbosity': verbosity,
              'training_threads': training_threads}
    _check_arguments(loss, accuracy, network_function, counts)
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 31)
    rng.seed_everything(seed)  # before the network: its initial weights derive from the seed
    if network_function is None:
        network = ExchangeableNetwork(input_shape, output_shape, phi_net, g, h_net)
        if loss == 'cross-ent' and network.head != 'softmax':
            raise ValueError("train: loss='cross-ent' needs an h_net ending in ('softmax',); "
                             "use loss='l2' with ('matmul',)")
    else:
        network = network_function
    handler = _logging_to(logfile)
    if handler is not None:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    threads = torch.get_num_threads()
    generator = None
    try:
        torch.set_num_threads(training_threads)
        model = DefinettiModel({'network': network, 'loss': loss, 'accuracy': accuracy,
                                'lr': learning_rate}, device=device)
        generator = SimulationBatchGenerator(simulator, input_shape, output_shape, batch_size,
                                             verbosity, processes=sim_threads,
                                             queue_capacity=queue_capacity, seed=seed,
                                             timeout=sim_timeout)
        log.info(f'train: seed {seed}, {sum(p.numel() for p in network.parameters())} '
                 f'parameters, {sim_threads} simulation processes, device {model.device}')
        summary = _train_batches(model, generator, num_batches, verbosity, accuracy,
                                 training_summary)
    finally:
        torch.set_num_threads(threads)
        if generator is not None:
            generator.close()
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
    if save_path is not None:
        save(network, model_file(save_path), loss)
    return summary


def _train_batches(model, generator, num_batches, verbosity, accuracy, summary_path):
    rows, done, start = [], 0, time.perf_counter()
    with tqdm(total=num_batches, unit='batch', desc='training', disable=None) as bar:
        while done < num_batches:
            count = min(verbosity, num_batches - done)
            values = model.train_epoch(itertools.islice(generator.stream(), count), bar)
            done += count
            value = values['accuracy'] if 'accuracy' in values else values['loss']
            rows.append((done, values['loss'], value))
            bar.set_postfix(loss=f'{values["loss"]:.4g}', accuracy=f'{value:.4g}')
            tqdm.write(f'batch {done}: loss {values["loss"]:.6g}, accuracy {value:.6g}')
            elapsed = time.perf_counter() - start
            log.info(f'batch {done}: loss {values["loss"]:.6g}, accuracy {value:.6g}; '
                     f'{generator.simulated / elapsed:.1f} simulations/s, '
                     f'{100 * generator.wait_seconds / elapsed:.1f} % of the time waiting for '
                     f'simulations')
            if summary_path is not None:
                text = ''.join(f'{b} {l:.8g} {a:.8g}\n' for b, l, a in rows)
                atomic_write(os.path.expanduser(summary_path), lambda f: f.write(text))
            if not math.isfinite(values['loss']):
                raise FloatingPointError(f'train: the loss is {values["loss"]} after {done} '
                                         f'batches; lower the learning rate or check the labels')
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def save(network, path, loss):
    """Write the network to ``path`` atomically: its spec and weights (a custom network: its
    weights and class name; ``test(network_function=...)`` rebuilds it)."""
    state = {'format': FORMAT, 'loss': loss if isinstance(loss, str) else 'custom',
             'weights': network.state_dict()}
    if isinstance(network, ExchangeableNetwork):
        state.update(network.spec())
    else:
        state['custom'] = type(network).__name__
    atomic_write(path, lambda f: torch.save(state, f), mode='wb')


def load(model_path, device=None, network_function=None):
    """The network ``train(save_path=model_path)`` saved, in eval mode.

    A custom network's weights are loaded into ``network_function``, the module given to
    ``train`` (or one of the same class); weights alone are read, never code."""
    path = model_file(model_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'test: no saved network at {path} (model_path is the '
                                f'save_path given to train())')
    state = torchfile.load(path, 'test: saved network')
    if not isinstance(state, dict) or state.get('format') != FORMAT:
        raise ValueError(f'test: {path} is not a network saved by train()')
    if 'custom' in state or 'module' in state:
        if network_function is None:
            raise ValueError(f'test: {path} holds the weights of a custom network_function '
                             f'({state.get("custom", "a pickled module")}); pass the same '
                             f'module: test(data, model_path, network_function=network)')
        network = network_function
        network.load_state_dict(state['weights'])
    else:
        network = ExchangeableNetwork(state['input_shape'], state['output_shape'],
                                      state['phi_net'], state['g'], state['h_net'])
        network.load_state_dict(state['weights'])
    return network.to(resolve_device(device)).eval(), state


@torch.no_grad()
def test(data, model_path, threads=1, batch_size=256, device=None, network_function=None):
    """Run a trained network on data (defiNETti's ``test``).

    Parameters
    ----------
    data: list of numpy.ndarray, or numpy.ndarray
        Examples, each of the ``input_shape`` given to ``train()`` (or one array of shape
        (n, *input_shape)).
    model_path: str
        The ``save_path`` given to ``train()``.
    threads: int
        torch threads.
    network_function: torch.nn.Module or None
        For a network trained with a custom ``network_function``: that module (or one of
        the same class), into which the saved weights are loaded.

    Returns
    -------
    numpy.ndarray, shape=(len(data), output_shape[0])
        Class probabilities for a softmax head (or a custom network trained with
        'cross-ent'), the outputs otherwise.
    """
    network, state = load(model_path, device, network_function)
    shape = state.get('input_shape')
    arrays = [np.asarray(x, dtype=np.float32) for x in data]
    if not arrays:
        raise ValueError('test: data holds no examples')
    if shape is not None:
        wrong = [(i, a.shape) for i, a in enumerate(arrays) if a.shape != tuple(shape)]
        if wrong:
            i, got = wrong[0]
            raise ValueError(f'test: data[{i}] has shape {got} but the network was trained on '
                             f'input_shape {tuple(shape)} ({len(wrong)} of {len(arrays)} '
                             f'examples differ)')
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device = next(network.parameters()).device
        outputs = []
        for i in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.stack(arrays[i:i + batch_size])).to(device)
            y = network(x)
            if isinstance(y, dict):
                y = y['y_pred']
            elif state.get('loss') == 'cross-ent':
                y = torch.softmax(y, dim=1)
            outputs.append(y.float().cpu().numpy())
    finally:
        torch.set_num_threads(before)
    return np.concatenate(outputs)


test.__test__ = False  # a pytest file that imports test() must not collect it as a test
