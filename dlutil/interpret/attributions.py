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

N and padding. Our encoders write N (and the other IUPAC codes) as 0.25 in all four rows
(``prepare``, ``embedH5.py``) or as an all-zero column (``FastaData``), and pad windows that run
off a chromosome end with either. Such a column is not a base, and the convention is: **its
attribution is 0** (observed and hypothetical, for all three methods; ISM edits no such column),
**the model sees it as encoded** (0.25 stays 0.25: tangermeme gets the bases, and the network
adds the other columns back, see :func:`split_bases`), and **every DeepLIFT reference keeps it
where it is**: a reference is a dinucleotide shuffle of the sequence's bases alone, as if the
other columns were cut out, put back around them. As a reference equals the sequence at such a
column, its DeepLIFT contribution is exactly 0, and the attributions of the bases still sum to
the output difference. A column that is none of these (negative, above 1, or summing to more
than 1) is refused with a message naming the sequence and the position.
"""
import contextlib
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from dlutil import extras
from dlutil.interpret.sequence_model import OneHotNetwork, input_shape
from dlutil.sequences.onehot import reverse_complement
from dlutil.training.evaluation import device_of, evaluating, network_of

__all__ = ['ism', 'ism_scores', 'gradient_x_input', 'deep_lift_shap', 'Attributions',
           'as_sequences', 'split_bases', 'shuffled_references', 'unexplained_modules', 'wrap']


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
    # the wrapper in eval mode too: tangermeme puts a model back in the mode it found it in, and
    # a new module is in training mode, which would switch dropout on for every later pass
    with evaluating(network, grad=True):
        wrapped = OneHotNetwork(model, shape, strand_average=False, autocast=False).eval()
        yield wrapped, device_of(network)


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


def split_bases(X):
    """``(bases, unknown, is_base)``: X split into its one-hot columns and the others.

    Parameters
    ----------
    X: array or tensor, shape=(n, 4, L) or (n, 4, 1, L)
        Sequences as our encoders write them: a base is one 1; N and the IUPAC codes 0.25 (or
        their bases' shares), padding and unknown letters all-zero columns.

    Returns
    -------
    bases: torch.Tensor, float32, shape=(n, 4, L): X with every column that is not a base
        zeroed (what tangermeme accepts)
    unknown: torch.Tensor, float32, shape=(n, 4, L): those columns as they are (X - bases)
    is_base: torch.Tensor, bool, shape=(n, L)

    Raises
    ------
    ValueError: a column with a value below 0 or above 1, or summing to more than 1
    """
    X = as_sequences(X)
    sums = X.sum(1)
    bad = ~torch.isfinite(X).all(1) | (X < 0).any(1) | (X > 1).any(1) | (sums > 1 + 1e-4)
    if bad.any():
        i, position = (int(v) for v in bad.nonzero()[0])
        column = [round(float(v), 4) for v in X[i, :, position]]
        raise ValueError(f'sequence {i} holds {column} at position {position}: neither a base '
                         f'(one 1), N or an IUPAC code (weights summing to 1) nor padding '
                         f'(zeros); attributions need one-hot DNA as the encoders write it')
    is_base = (sums == 1) & ((X == 0) | (X == 1)).all(1)
    bases = X * is_base[:, None]
    return bases, X - bases, is_base


def shuffled_references(bases, is_base, n_shuffles, seed):
    """DeepLIFT's references: ``n_shuffles`` dinucleotide shuffles of each sequence's bases.

    Reference k of a sequence is tangermeme's ``dinucleotide_shuffle(x, n=1, random_state=seed
    + k)`` (what its ``deep_lift_shap(..., random_state=seed)`` draws), of the bases alone: the
    columns that are not bases (N, padding) are cut out, the rest shuffled and put back around
    them, so every reference keeps those columns in place. A sequence of fewer than 3 bases is
    its own reference.

    Returns
    -------
    torch.Tensor, float32, shape=(n, n_shuffles, 4, L)
    """
    extras.require('tangermeme', '--attribute')
    from tangermeme.ersatz import dinucleotide_shuffle
    references = bases[:, None].repeat(1, n_shuffles, 1, 1)
    counts = is_base.sum(1)
    for count in counts.unique().tolist():
        if count < 3:
            continue
        rows = (counts == count).nonzero()[:, 0]
        keep = is_base[rows]                                            # (r, L)
        compact = bases[rows].transpose(1, 2)[keep].reshape(len(rows), count, 4).transpose(1, 2)
        for k in range(n_shuffles):
            shuffled = dinucleotide_shuffle(compact, n=1,
                                            random_state=[seed + k] * len(rows))[:, 0]
            block = references[rows, k].transpose(1, 2)                 # (r, L, 4)
            block[keep] = shuffled.transpose(1, 2).reshape(-1, 4)
            references[rows, k] = block.transpose(1, 2)
    return references


#: module types that are linear (or affine) in their input: DeepLIFT needs no rule for them
LINEAR_MODULES = (nn.Linear, nn.Bilinear, nn.Identity, nn.Flatten, nn.Unflatten,
                  nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm,
                  nn.modules.dropout._DropoutNd, nn.modules.pooling._AvgPoolNd,
                  nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.padding._ConstantPadNd,
                  nn.modules.padding._ReflectionPadNd, nn.modules.padding._ReplicationPadNd,
                  nn.Upsample, nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle)


def unexplained_modules(model):
    """``["name (Type)", …]``: the network's leaf modules that are neither linear nor given a
    DeepLIFT rule by tangermeme (``nn.AdaptiveMaxPool1d``, ``nn.LSTM``, …); DeepLIFT treats
    them as linear, which breaks the summation to the output difference."""
    extras.require('tangermeme', '--attribute')
    from tangermeme._deep_lift_utils import _build_nonlinear_ops
    handled = tuple(_build_nonlinear_ops())
    return [f'{name or "network"} ({type(module).__name__})'
            for name, module in network_of(model).named_modules()
            if not any(True for _ in module.children())
            and not isinstance(module, handled + LINEAR_MODULES)]


def convergence_cause(model):
    """Why DeepLIFT's attributions may not sum to the output difference, as far as we know."""
    unexplained = unexplained_modules(model)
    if unexplained:
        return (f'DeepLIFT has no rule for {", ".join(unexplained)} and treats '
                f'{"it" if len(unexplained) == 1 else "them"} as linear')
    return ('every module of the network is linear or has a DeepLIFT rule; an operation '
            'outside a module (a function such as torch.relu or torch.max called in forward) '
            'or a module called twice in one pass would explain the gap')


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
        minus logit t of sequence i; zero where c is the letter already there, and at every
        position that holds no base (N, padding).
    """
    extras.require('tangermeme', '--attribute')
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis
    X, unknown, is_base = split_bases(X)
    end = X.shape[-1] if end is None else end
    if not 0 <= start < end <= X.shape[-1]:
        raise ValueError(f'ism: positions [{start}, {end}) are not inside sequences of '
                         f'{X.shape[-1]}')
    length = X.shape[-1]

    def effects(wrapped, device, x, rest, a, b):
        y0, y_hat = saturation_mutagenesis(wrapped, x, args=(rest,), batch_size=batch_size,
                                           raw_outputs=True, start=a, end=b, device=device,
                                           fast=fast)
        # y_hat: (n, 4, L, tasks) predictions of the edits; the unedited letter repeats y0
        return y_hat.float() - y0.float()[:, None, None, :]

    with wrap(model, length) as (wrapped, device):
        delta = effects(wrapped, device, X, unknown, start, end)
        if both_strands(model):  # letter c at l is letter 3 - c at L - 1 - l on the other strand
            other = effects(wrapped, device, reverse_complement(X), reverse_complement(unknown),
                            length - end, length - start)
            delta = (delta + other.flip(1).flip(2)) / 2
    # zero for the letter already there, and at every column that is not a base (N, padding)
    keep = (1 - X[:, :, start:end]) * is_base[:, None, start:end]
    return delta.mul_(keep[..., None]).numpy()


def ism_scores(effects, X):
    """Per-base ISM attributions, shape=(n, 4, L), of one task's ``effects`` (n, 4, L): minus the
    mean effect of changing the observed letter, on the observed letter (so a base whose loss
    lowers the output scores positive); 0 where there is no base (N, padding)."""
    bases = split_bases(X)[0].numpy()
    return -effects.mean(1, keepdims=True) * bases * 4 / 3


def gradient_x_input(model, X, target=0, batch_size=64):
    """Gradient of logit ``target`` with respect to the input, times the input: (n, 4, L); 0
    where there is no base (N, padding)."""
    extras.require('tangermeme', '--attribute')
    from tangermeme.saliency import saliency
    X, unknown, _ = split_bases(X)
    with wrap(model, X.shape[-1]) as (wrapped, device):
        scores = saliency(wrapped, X, args=(unknown,), target=target, batch_size=batch_size,
                          gradient_correction=False, device=device).float()
        if both_strands(model):  # rc(gradient(rc X) * rc X) is rc(gradient(rc X)) * X
            other = saliency(wrapped, reverse_complement(X), args=(reverse_complement(unknown),),
                             target=target, batch_size=batch_size, gradient_correction=False,
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
        References per sequence: dinucleotide shuffles of its bases, drawn from ``seed``
        (:func:`shuffled_references`).
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
    extras.require('tangermeme', '--attribute')
    from tangermeme.deep_lift_shap import deep_lift_shap as tangermeme_dls
    X, unknown, is_base = split_bases(X)
    both = both_strands(model)
    references = shuffled_references(X, is_base, n_shuffles, seed)

    def explain(wrapped, device, x, rest, refs):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # we check convergence ourselves, below
            # only_warn: X may hold all-zero columns (N, padding), which split_bases checked
            return tangermeme_dls(wrapped, x, args=(rest,), references=refs, target=target,
                                  batch_size=batch_size, hypothetical=hypothetical,
                                  device=device, only_warn=True)

    def output(wrapped, device, x, rest):
        """Logit ``target`` per row of x, float64 (the mean of both strands' for such a model)."""
        def strand(v, r):
            return torch.cat([wrapped(b.to(device), u.to(device))[:, target].double().cpu()
                              for b, u in zip(v.split(batch_size), r.split(batch_size))])
        with torch.no_grad():
            return (strand(x, rest) + strand(reverse_complement(x), reverse_complement(rest))
                    ) / 2 if both else strand(x, rest)

    with wrap(model, X.shape[-1]) as (wrapped, device):
        attributions = explain(wrapped, device, X, unknown, references)
        if both:  # the other strand against the reverse complements of the same references
            other = explain(wrapped, device, reverse_complement(X), reverse_complement(unknown),
                            reverse_complement(references.flatten(0, 1)).reshape(
                                references.shape))
            attributions = (attributions + reverse_complement(other)) / 2
        outputs = output(wrapped, device, X, unknown)
        ref_output = output(wrapped, device, references.flatten(0, 1),
                            unknown.repeat_interleave(n_shuffles, 0))
    # no attribution where there is no base (N, padding): its contribution is 0, as every
    # reference holds the same column there
    attributions = (attributions.float() * is_base[:, None]).numpy()
    observed = attributions * X.numpy() if hypothetical else attributions
    difference = (outputs - ref_output.reshape(len(X), -1).mean(1)).numpy()
    delta = observed.sum((1, 2)) - difference
    largest = float(np.abs(delta).max()) if len(delta) else 0.0
    # relative to the typical difference: a sequence whose output happens to equal its
    # references' would make a per-sequence ratio meaningless
    relative = largest / max(float(np.abs(difference).mean()), 1e-6) if len(delta) else 0.0
    result = Attributions(attributions, delta, difference, largest, relative)
    if check and relative > tolerance:
        raise RuntimeError(f'{result.describe()}: above the tolerance {tolerance:g}, so the '
                           f'attributions are not trustworthy; {convergence_cause(model)}')
    return result
