"""Models: the training, evaluation and prediction logic around a user's network.

A ``def.py`` defines ``class Model(BaseModel)`` (or one of the predefined subclasses) whose
``init_model(self)`` builds a network, a criterion and an optimizer from ``self.config`` and hands
them to ``super().init_model(...)``. The loop is plain PyTorch split into steps a subclass can
override::

    run_epoch ─ train_epoch ─ train_step (zero_grad, forward, loss, backward, clip, step,
              │                           constraints)
              ├ evaluate ─ predict_batches
              └ end_epoch (hook: schedulers, early stopping)

Shapes: inputs are whatever the network takes (e.g. one-hot DNA, shape=(n, 4, 1, length) for the
``Conv*Network`` classes); outputs are a tensor or a dict of tensors.
"""
import math
import time

import torch
from torch import nn

from dlutil.training import aids, evaluation, labels
from dlutil.data.batches import (concat, detach, iterate, numel, resolve_device, rows,
                                     scalar_metrics, split_batch, to_float32, to_input, to_numpy,
                                     to_tensor)
from dlutil import files, torchfile
from dlutil.data.checks import scan_finite

LOSS_SHOWN_EVERY = 0.5  # seconds between readings of the running loss for the progress bar


class BaseModel:
    """Training, evaluation, prediction and checkpoint state of one configuration.

    Subclasses implement ``init_model`` (build network, criterion, optimizer from
    ``self.config`` and call ``super().init_model(...)``), ``train_metrics``, ``eval_metrics``
    and ``get_hyperband_reward``.

    Parameters
    ----------
    config: dict
        One sampled configuration (``get_config()``), JSON-serialisable.
    device: str, torch.device or None
        None means CUDA when available, else CPU.

    Class attributes a subclass may set
    -----------------------------------
    grad_clip_norm: float or None
        Clip the gradients' total L2 norm to this value before every optimizer step.
    early_stopping_patience: int or None
        Stop a trial after this many epochs without a higher reward; its best epoch (best.pt)
        is what it reports and what ``-e``/``-p`` use.
    reduce_lr_patience: int or None
        Multiply the learning rate by ``reduce_lr_factor`` after this many epochs without a lower
        ``val_loss`` (``ReduceLROnPlateau``).
    reduce_lr_factor: float
    amp: None, 'bf16' or 'fp16'
        Mixed precision: autocast the forward pass and the loss (fp16 on CUDA only, with a
        gradient scaler; bf16 on CUDA or CPU).
    channels_last: bool
        Train 4-D inputs in the channels-last memory format (faster convolutions on CUDA).
    cudnn_benchmark: bool
        Let cuDNN pick the fastest convolution algorithms for the input shapes seen.
    strand_average: bool
        Evaluate and predict on both strands of one-hot DNA (ACGT order) and average each output
        tensor; ``-e``, ``-p``, ``--vep`` and ``--attribute`` all do
        (:mod:`dlutil.training.evaluation`).
    max_train_metric_values: int
        ``train_metrics`` gets the outputs of the epoch's first batches, up to this many values.
    input_dtype: torch.dtype or None
        Integer and bool inputs (how one-hot sequences and genotypes are stored) are cast to this
        dtype on the device; None passes them as they are (e.g. token indices for an embedding).
    """

    grad_clip_norm = None
    early_stopping_patience = None
    reduce_lr_patience = None
    reduce_lr_factor = 0.5
    amp = None
    channels_last = False
    cudnn_benchmark = False
    strand_average = False
    max_train_metric_values = 2 ** 23
    input_dtype = torch.float32

    def __init__(self, config, device=None):
        self.config = config
        self.device = resolve_device(device)
        self.network = self.criterion = self.optimizer = self.scheduler = None
        self.constraints = ()
        self.label_faults = labels.Faults()
        self.parallel = None  # --ddp: a dlutil.training.ddp.DataParallel
        aids.check_amp(type(self).__name__, self.amp, self.device)
        if self.cudnn_benchmark and self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = True
        self.init_model()
        if self.network is None:
            raise TypeError(f'{type(self).__name__}.init_model() must end by calling '
                            'super().init_model(network, ...)')
        self.scaler = aids.grad_scaler(self.amp)
        self.plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode='min', factor=self.reduce_lr_factor,
            patience=self.reduce_lr_patience) if self.reduce_lr_patience else None)
        self.stopping = aids.EarlyStopping(self.early_stopping_patience)

    # -- the def.py contract ------------------------------------------------------------------
    def init_model(self, network=None, criterion=None, optimizer=None, constraints=(),
                   scheduler=None):
        """Register the network (moved to ``self.device``), criterion, optimizer, constraints.

        ``criterion(y_true_t, y_pred_t)`` returns a scalar tensor; ``constraints`` are callables
        applied to the network after every optimizer step; ``scheduler`` is a
        ``torch.optim.lr_scheduler`` stepped after every epoch (``ReduceLROnPlateau`` with the
        epoch's ``val_loss``).
        """
        if network is None and criterion is None and optimizer is None:
            raise NotImplementedError(f'{type(self).__name__} must implement init_model(self)')
        if not isinstance(network, nn.Module):
            raise TypeError(f'init_model: network must be a torch.nn.Module, '
                            f'got {type(network).__name__}')
        if not callable(criterion):
            raise TypeError(f'init_model: criterion must be callable '
                            f'(y_true_t, y_pred_t) -> scalar tensor, got {type(criterion).__name__}')
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f'init_model: optimizer must be a torch.optim.Optimizer, '
                            f'got {type(optimizer).__name__}')
        constraints = tuple(constraints or ())
        for constraint in constraints:
            if not callable(constraint):
                raise TypeError(f'init_model: constraints must be callables, got {constraint!r}')
        # .to() keeps the Parameter objects, so an optimizer built before it stays valid
        self.network = network.to(self.device)
        if self.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.criterion, self.optimizer, self.constraints = criterion, optimizer, constraints
        self.scheduler = scheduler
        for constraint in constraints:
            if hasattr(constraint, 'weights'):
                constraint.weights(self.network)  # a glob that matches nothing fails now

    def train_metrics(self, y_true, y_pred):
        """Metrics of the epoch's training batches, numpy in, ``{name: scalar}`` out."""
        raise NotImplementedError(f'{type(self).__name__} must implement train_metrics')

    def eval_metrics(self, y_true, y_pred):
        """Metrics of a whole validation or test set, numpy in, ``{name: scalar}`` out."""
        raise NotImplementedError(f'{type(self).__name__} must implement eval_metrics')

    def get_hyperband_reward(self, result):
        """The number Hyperband maximises, from an epoch's ``train_*`` and ``val_*`` values."""
        raise NotImplementedError(f'{type(self).__name__} must implement get_hyperband_reward')

    # -- training -----------------------------------------------------------------------------
    def autocast(self):
        """The mixed-precision context of :attr:`amp` (a no-op without it)."""
        return aids.autocast(self.device, self.amp)

    def prepare_input(self, x):
        if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def train_step(self, x, y):
        """One optimizer step on a batch of tensors; returns ``(loss, y_pred)``, detached."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            y_pred = self.network(self.prepare_input(x))
            loss = self.compute_loss(y, y_pred)
        share = loss if self.parallel is None else self.parallel.weighted(loss)
        (share if self.scaler is None else self.scaler.scale(share)).backward()
        self.apply_gradients()
        return loss.detach(), detach(y_pred)

    def apply_gradients(self):
        """After backward: (``--ddp``: sum over processes), unscale, clip, step, constraints."""
        if self.parallel is not None:
            self.parallel.all_reduce_gradients()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients
        if self.grad_clip_norm:
            nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        for constraint in self.constraints:
            constraint(self.network)

    def forward_eval(self, x):
        """The network's output in evaluation for inputs on the device (after :meth:`to_input`):
        under :meth:`autocast`, averaged over both strands with :attr:`strand_average`. Every
        command scores through it (:func:`dlutil.training.evaluation.forward`)."""
        return evaluation.forward(self, x)

    def to_input(self, x):
        """A batch's inputs on the device, integer and bool ones cast to :attr:`input_dtype`."""
        return to_input(x, self.device, self.input_dtype)

    def compute_loss(self, y_true_t, y_pred_t):
        """The criterion in float32, outside autocast: fp16/bf16 outputs are cast up and the
        targets never cast down (a count above 65504 is inf in fp16)."""
        if self.amp is None:  # nothing to switch off (entering autocast costs every batch)
            loss = self.criterion(to_float32(y_true_t), to_float32(y_pred_t))
        else:
            with torch.autocast(self.device.type, enabled=False):
                loss = self.criterion(to_float32(y_true_t), to_float32(y_pred_t))
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f'the criterion must return a scalar tensor, got {shape}')
        return loss

    def train_epoch(self, generator, progress=None):
        """One pass over ``generator``; returns ``train_metrics`` plus the mean batch ``loss``.

        ``progress``: None, or a bar with ``update(1)`` called after each batch (a tqdm bar also
        shows the running mean loss as its postfix).
        """
        self.network.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        n = kept = 0
        kept_true, kept_pred = [], []
        # the bar shows the running mean loss, read at most every LOSS_SHOWN_EVERY seconds:
        # reading it is a CPU-GPU sync
        show_loss = hasattr(progress, 'set_postfix') and not getattr(progress, 'disable', False)
        next_show = time.monotonic()
        for batch in generator if self.parallel is None else self.parallel.shard(generator):
            x, y = split_batch(batch)
            if y is None:
                raise ValueError('the training generator yielded batches without labels')
            m = rows(x)
            loss, y_pred = self.train_step(self.to_input(x), to_tensor(y, self.device))
            loss_sum += loss * m  # stays on the device: no CPU-GPU sync per batch
            n += m
            if kept < self.max_train_metric_values:
                kept_true.append(y)
                kept_pred.append(y_pred)
                kept += numel(y_pred)
            if show_loss and time.monotonic() >= next_show:
                progress.set_postfix(loss=f'{(loss_sum / n).item():.4g}', refresh=False)
                next_show = time.monotonic() + LOSS_SHOWN_EVERY
            if progress is not None:
                progress.update(1)
        if self.parallel is not None:
            loss_sum, n, kept_true, kept_pred = self.parallel.gather_epoch(
                loss_sum, n, kept_true, kept_pred)
        if n == 0:
            raise ValueError('the training generator yielded no batches')
        self.label_faults.check()
        mean_loss = (loss_sum / n).item()  # the epoch's one CPU-GPU sync
        if not math.isfinite(mean_loss):
            scan_finite('training generator', generator)  # NaN in the data is no divergence
            return {'loss': mean_loss}  # diverged: metrics of NaN outputs mean nothing
        values = self.train_metrics(concat(kept_true), to_numpy(concat(kept_pred)))
        values = scalar_metrics(values, f'{type(self).__name__}.train_metrics')
        values.setdefault('loss', mean_loss)
        return values

    def predict_batches(self, generator, batch_size=None, with_loss=True):
        """Run the network over a whole generator in eval mode (restored afterwards).

        Returns
        -------
        (y_true, y_pred, loss): labels (None without), outputs as numpy, mean loss (or None)
        """
        trues, preds = [], []
        loss_sum, n = 0.0, 0
        batches = iterate(generator, batch_size)
        with evaluation.evaluating(self.network):
            for batch in batches if self.parallel is None else self.parallel.deal(batches):
                x, y = split_batch(batch)
                y_pred = evaluation.score(self, x)
                if y is not None and with_loss:
                    with self.autocast():
                        loss = self.compute_loss(to_tensor(y, self.device), y_pred)
                    loss_sum += float(loss) * rows(x)
                if y is not None:
                    trues.append(y)
                preds.append(to_numpy(y_pred))  # to the CPU now: a test set may not fit a GPU
                n += rows(x)
        if self.parallel is not None:  # every rank's batches, back in order
            trues, preds, loss_sum, n = self.parallel.gather(trues, preds, loss_sum, n)
        if n == 0:
            raise ValueError('the generator yielded no batches')
        self.label_faults.check()
        y_true = concat(trues) if trues else None
        loss = loss_sum / n if (trues and with_loss) else None
        return y_true, concat(preds), loss

    def evaluate(self, generator, batch_size=None):
        """``eval_metrics`` on a whole labelled set, plus its mean ``loss``."""
        y_true, y_pred, loss = self.predict_batches(generator, batch_size)
        if y_true is None:
            raise ValueError('the evaluation generator yielded batches without labels')
        values = self.eval_metrics(y_true, y_pred)
        values = scalar_metrics(values, f'{type(self).__name__}.eval_metrics')
        values.setdefault('loss', loss)
        return values

    def predict(self, generator, batch_size=None):
        """Predictions for a whole generator, as :meth:`prediction_output` shapes them."""
        _, y_pred, _ = self.predict_batches(generator, batch_size, with_loss=False)
        return self.prediction_output(y_pred)

    def prediction_output(self, y_pred):
        """What predictions are saved: ``y_pred['y_pred']`` for dict outputs that have it."""
        if isinstance(y_pred, dict) and 'y_pred' in y_pred:
            return y_pred['y_pred']
        return y_pred

    def run_epoch(self, train_generator, val_generator, batch_size=None, progress=None):
        """Train one epoch, validate, and return the epoch's result row.

        Returns
        -------
        dict
            ``train_seconds``, the ``train_*`` and ``val_*`` metrics and ``hyperband_reward``.
            An override must return at least the numbers ``train_loss`` and
            ``hyperband_reward`` (:data:`dlutil.contract.RUN_EPOCH_KEYS`): the search ranks
            trials by the reward and marks a trial diverged when either is NaN or infinite; a
            row without them stops the search with an error naming the method and the key.
        """
        start = time.perf_counter()
        train = self.train_epoch(train_generator, progress)
        seconds = time.perf_counter() - start
        result = {'train_seconds': seconds}
        if not math.isfinite(train['loss']):  # diverged: the search records it as failed
            result.update({'train_loss': train['loss'], 'hyperband_reward': float('nan')})
            return result
        val = self.evaluate(val_generator, batch_size)
        result.update({f'train_{key}': value for key, value in train.items()})
        result.update({f'val_{key}': value for key, value in val.items()})
        reward = self.get_hyperband_reward(dict(result))
        try:
            result['hyperband_reward'] = float(reward)
        except (TypeError, ValueError):
            raise TypeError(f'{type(self).__name__}.get_hyperband_reward must return a number, '
                            f'got {type(reward).__name__}') from None
        return result

    def end_epoch(self, result):
        """After each epoch: learning-rate schedules, then early stopping; True stops training.

        Subclasses that override it should call ``super().end_epoch(result)``.
        """
        if self.plateau is not None:
            self.plateau.step(result['val_loss'])
        if self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(result['val_loss'])
            else:
                self.scheduler.step()
        return self.stopping.step(result['hyperband_reward'])

    # -- state --------------------------------------------------------------------------------
    def state_dict(self):
        """Network, optimizer, schedules, early-stopping counters and :meth:`extra_state`."""
        training = {'stopping': self.stopping.state_dict()}
        for name in ('scheduler', 'plateau', 'scaler'):
            if getattr(self, name) is not None:
                training[name] = getattr(self, name).state_dict()
        return {'network': self.network.state_dict(), 'optimizer': self.optimizer.state_dict(),
                'training': training, 'extra': self.extra_state()}

    def load_state_dict(self, state, optimizer=True):
        self.network.load_state_dict(state['network'])
        if optimizer:
            self.optimizer.load_state_dict(state['optimizer'])
            training = state.get('training', {})
            self.stopping.load_state_dict(training.get('stopping', {}))
            for name in ('scheduler', 'plateau', 'scaler'):
                if getattr(self, name) is not None and name in training:
                    getattr(self, name).load_state_dict(training[name])
            self.load_extra_state(state.get('extra', {}))

    def extra_state(self):
        """State of subclasses (schedulers, counters) to checkpoint; plain data or tensors."""
        return {}

    def load_extra_state(self, state):
        pass

    def save_weights(self, path):
        """Save the network's weights alone (``torch.load(path, weights_only=True)`` reads them)."""
        state = self.network.state_dict()
        files.atomic_write(path, lambda f: torch.save(state, f), mode='wb')

    def load_weights(self, path):
        """Load weights saved by :meth:`save_weights`, or the network of a trial checkpoint."""
        state = torchfile.load(path, 'weights file', self.device)
        if 'model' in state and 'network' in state['model']:  # a trial checkpoint
            state = state['model']['network']
        self.network.load_state_dict(state)

