"""Which bases drive a prediction: saturation mutagenesis, gradient × input and DeepLIFT/SHAP.

For any model that takes one-hot DNA, (n, 4, L) or (n, 4, 1, L), and returns logits (n, tasks)
(or a dict with ``'y_pred_loss'``); all three run through tangermeme (Schreiber, maintained with
bpnet-lite) on the model wrapped by :class:`~dlutil.interpret.sequence_model.OneHotNetwork`::

    effects = ism(model, X)                       # (n, 4, L, tasks): every position x letter
    scores = gradient_x_input(model, X, target=0)  # (n, 4, L)
    result = deep_lift_shap(model, X, target=0)    # result.attributions, result.convergence

Attributions are of the logits (the model's output before a sigmoid or softmax), where DeepLIFT's
summation-to-delta holds and effects add up. :func:`deep_lift_shap` checks that property for
every sequence and says so: the sum of a sequence's attributions must equal its output minus the
mean output of its references (dinucleotide shuffles); :class:`Attributions` carries the
largest absolute and relative gap, and ``check=True`` raises when it is above ``tolerance``.

A model with ``strand_average = True`` predicts the mean of its logits on both strands; its
attributions are the mean of each strand's, the reverse complement's mapped back onto the
sequence (all three methods are linear in the model's output, so this is exact; DeepLIFT's rules
forbid calling a layer twice in one pass, which a two-strand forward pass would). The
reverse-complement pass of DeepLIFT/SHAP gets the reverse complements of the same references, so
the attributions sum to the averaged output minus its mean over those references.
"""
import contextlib
import warnings
from typing import NamedTuple

import numpy as np
import torch

from dlutil.interpret.sequence_model import OneHotNetwork, input_shape
from dlutil.sequences.onehot import reverse_complement
from dlutil.training.evaluation import device_of, evaluating, network_of

__all__ = ['ism', 'ism_scores', 'gradient_x_input', 'deep_lift_shap', 'Attributions',
           'as_sequences', 'wrap']


@contextlib.contextmanager
def wrap(model, length=None):
    """``(network, device)``: ``model`` as an ``nn.Module`` taking (n, 4, L) and returning logits
    (n, tasks), in eval mode for the ``with`` block (every module's mode is restored after).

    It scores through :func:`dlutil.training.evaluation.forward` with the model's input dtype
    and memory format, one strand at a time (:func:`both_strands` averages the attributions, not
    the forward pass) and in float32: DeepLIFT's summation check needs float32 (not ``amp``);
    ISM and gradient x input explain the same function, so the three logos of one sequence
    agree.
    """
    network = network_of(model)
    shape = input_shape(model, length, what='attribution')
    with evaluating(network, grad=True):
        yield (OneHotNetwork(model, shape, strand_average=False, autocast=False),
               device_of(network))


def both_strands(model):
    """Whether ``model`` averages its strands (``strand_average``), so its attributions do."""
    return bool(getattr(model, 'strand_average', False))


def as_sequences(X):
    """One-hot sequences as a float32 tensor, shape=(n, 4, L); (n, 4, 1, L) is squeezed."""
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X,
                        dtype=torch.float32)
    if X.dim() == 4 and X.shape[2] == 1:
        X = X[:, :, 0]
    if X.dim() != 3 or X.shape[1] != 4:
        raise ValueError(f'X has shape {tuple(X.shape)} but must have shape (n, 4, L) or '
                         f'(n, 4, 1, L): one-hot DNA')
    return X


def ism(model, X, batch_size=64, start=0, end=None, fast=True):
    """In-silico saturation mutagenesis: the change of every output for every single-letter edit.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    X: array or tensor, shape=(n, 4, L) or (n, 4, 1, L)
        One-hot sequences.
    batch_size: int
        Edited sequences per forward pass.
    start, end: int
        Mutate positions [start, end) only (default: all).
    fast: bool
        Let tangermeme use fastISM (recompute only what an edit changes) on jobs longer than
        about 30 s, after checking it against full forward passes; equal up to rounding.

    Returns
    -------
    numpy.ndarray, float32, shape=(n, 4, end - start, tasks)
        ``out[i, c, l, t]`` = logit t of sequence i with position start + l set to letter c,
        minus logit t of sequence i; zero where c is the letter already there.
    """
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis
    X = as_sequences(X)
    end = X.shape[-1] if end is None else end
    if not 0 <= start < end <= X.shape[-1]:
        raise ValueError(f'ism: positions [{start}, {end}) are not inside sequences of '
                         f'{X.shape[-1]}')
    length = X.shape[-1]

    def effects(wrapped, device, x, a, b):
        y0, y_hat = saturation_mutagenesis(wrapped, x, batch_size=batch_size, raw_outputs=True,
                                           start=a, end=b, device=device, fast=fast)
        # y_hat: (n, 4, L, tasks) predictions of the edits; the unedited letter repeats y0
        return y_hat.float() - y0.float()[:, None, None, :]

    with wrap(model, length) as (wrapped, device):
        delta = effects(wrapped, device, X, start, end)
        if both_strands(model):  # letter c at l is letter 3 - c at L - 1 - l on the other strand
            other = effects(wrapped, device, reverse_complement(X), length - end, length - start)
            delta = (delta + other.flip(1).flip(2)) / 2
    return delta.mul_(1 - X[:, :, start:end, None]).numpy()


def ism_scores(effects, X):
    """Per-base ISM attributions, shape=(n, 4, L), of one task's ``effects`` (n, 4, L): minus the
    mean effect of changing the observed letter, on the observed letter (so a base whose loss
    lowers the output scores positive)."""
    X = as_sequences(X).numpy()
    return -effects.mean(1, keepdims=True) * X * 4 / 3


def gradient_x_input(model, X, target=0, batch_size=64):
    """Gradient of logit ``target`` with respect to the input, times the input: (n, 4, L)."""
    from tangermeme.saliency import saliency
    X = as_sequences(X)
    with wrap(model, X.shape[-1]) as (wrapped, device):
        scores = saliency(wrapped, X, target=target, batch_size=batch_size,
                          gradient_correction=False, device=device).float()
        if both_strands(model):  # rc(gradient(rc X) * rc X) is rc(gradient(rc X)) * X
            other = saliency(wrapped, reverse_complement(X), target=target,
                             batch_size=batch_size, gradient_correction=False,
                             device=device).float()
            scores = (scores + reverse_complement(other)) / 2
    return scores.numpy()


class Attributions(NamedTuple):
    """DeepLIFT/SHAP attributions and their convergence check.

    attributions: numpy.ndarray, shape=(n, 4, L) (hypothetical: every letter, else the observed)
    delta: numpy.ndarray, shape=(n,): sum of the (observed) attributions minus (output − mean
        reference output)
    output_difference: numpy.ndarray, shape=(n,): output − mean reference output
    max_delta: float, largest |delta|
    relative_delta: float, largest |delta| / mean |output difference| (at least 1e-6)
    """
    attributions: np.ndarray
    delta: np.ndarray
    output_difference: np.ndarray
    max_delta: float
    relative_delta: float

    def describe(self):
        return (f'DeepLIFT/SHAP convergence: attributions sum to the output difference within '
                f'{self.max_delta:.2g} (relative {self.relative_delta:.2g}) over '
                f'{len(self.delta)} sequences')


def deep_lift_shap(model, X, target=0, n_shuffles=20, batch_size=64, seed=0,
                   hypothetical=False, tolerance=1e-3, check=False):
    """DeepLIFT/SHAP (DeepLiftShap with dinucleotide-shuffled references) through tangermeme.

    Parameters
    ----------
    model: BaseModel or torch.nn.Module
    X: array or tensor, shape=(n, 4, L) or (n, 4, 1, L)
    target: int
        The output (logit) to attribute.
    n_shuffles: int
        References per sequence: dinucleotide shuffles of it, drawn from ``seed``.
    hypothetical: bool
        Also attribute the letters not present (for TF-MoDISco).
    tolerance: float
        Largest relative convergence gap accepted with ``check``.
    check: bool
        Raise ``RuntimeError`` when the relative gap exceeds ``tolerance``.

    Returns
    -------
    Attributions
    """
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls
    X = as_sequences(X)
    both = both_strands(model)

    def explain(wrapped, device, x, references):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # we check convergence ourselves, below
            drawn = {'n_shuffles': n_shuffles, 'random_state': seed} if references is None \
                else {'references': references}
            return tangermeme_dls(wrapped, x, target=target, batch_size=batch_size,
                                  hypothetical=hypothetical, return_references=True,
                                  device=device, **drawn)

    def output(wrapped, device, x):
        """Logit ``target`` per row of x, float64 (the mean of both strands' for such a model)."""
        def strand(v):
            return torch.cat([wrapped(b.to(device))[:, target].double().cpu()
                              for b in v.split(batch_size)])
        with torch.no_grad():
            return (strand(x) + strand(reverse_complement(x))) / 2 if both else strand(x)

    with wrap(model, X.shape[-1]) as (wrapped, device):
        attributions, references = explain(wrapped, device, X, None)
        references = torch.as_tensor(references, dtype=torch.float32)
        if both:  # the other strand against the reverse complements of the same references
            other, _ = explain(wrapped, device, reverse_complement(X),
                               reverse_complement(references.flatten(0, 1)).reshape(
                                   references.shape))
            attributions = (attributions + reverse_complement(other)) / 2
        outputs = output(wrapped, device, X)
        ref_output = output(wrapped, device, references.reshape(-1, *X.shape[1:]))
    attributions = attributions.float().numpy()
    observed = attributions * X.numpy() if hypothetical else attributions
    difference = (outputs - ref_output.reshape(len(X), -1).mean(1)).numpy()
    delta = observed.sum((1, 2)) - difference
    largest = float(np.abs(delta).max()) if len(delta) else 0.0
    # relative to the typical difference: a sequence whose output happens to equal its
    # references' would make a per-sequence ratio meaningless
    relative = largest / max(float(np.abs(difference).mean()), 1e-6) if len(delta) else 0.0
    result = Attributions(attributions, delta, difference, largest, relative)
    if check and relative > tolerance:
        raise RuntimeError(f'{result.describe()}: above the tolerance {tolerance:g}; the network '
                           f'has an operation DeepLIFT does not handle (a functional call or a '
                           f'module used twice), so its attributions are not trustworthy')
    return result
