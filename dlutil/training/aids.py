"""Training aids a model switches on with class attributes: mixed precision and early stopping.

:class:`base_model.BaseModel` reads ``amp`` and ``early_stopping_patience``; the objects here keep
the state those features need between epochs, and checkpoint it.
"""
import contextlib
import dataclasses

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def check_amp(owner, amp, device):
    """Refuse an ``amp`` setting the device cannot run, naming the model class."""
    if amp not in (None, *AMP_DTYPES):
        raise ValueError(f"{owner}.amp must be None, 'bf16' or 'fp16', got {amp!r}")
    if amp == 'fp16' and device.type != 'cuda':
        raise ValueError(f"{owner}.amp = 'fp16' needs CUDA; use 'bf16' on the CPU")


_OFF = contextlib.nullcontext()  # reusable: entering it does nothing


def autocast(device, amp):
    """The autocast context of ``amp`` on ``device`` (a no-op for ``amp=None``)."""
    dtype = AMP_DTYPES.get(amp)
    return _OFF if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(amp):
    """fp16 needs a gradient scaler (its range underflows small gradients); bf16 does not."""
    return torch.amp.GradScaler('cuda') if amp == 'fp16' else None


@dataclasses.dataclass
class EarlyStopping:
    """Counts epochs since the best reward; :meth:`step` says when ``patience`` has run out.

    ``patience=None`` never stops. ``best`` and ``since`` go into checkpoints.
    """

    patience: int = None
    best: float = None
    since: int = 0

    def step(self, reward):
        """Record one epoch's reward; True when training should stop."""
        if not self.patience:
            return False
        if self.best is None or reward > self.best:
            self.best, self.since = reward, 0
        else:
            self.since += 1
        return self.since >= self.patience

    def state_dict(self):
        return {'best': self.best, 'since': self.since}

    def load_state_dict(self, state):
        self.best, self.since = state.get('best'), state.get('since', 0)
