"""Weight constraints applied in place after every optimizer step.

A constraint selects modules by a glob over their qualified names (``network.named_modules()``,
e.g. ``'features.0'``, ``'features.*'``, ``'*conv*'``, ``'*'``), or over their weights' names
(``'features.0.weight'``, ``'*.weight'``), and rewrites the weights in place, so the optimizer
keeps the same parameter objects.
"""
import fnmatch

import torch


class Constraint:
    """Base class: subclasses implement :meth:`constrain` for one weight tensor."""

    def __init__(self, module_glob='*'):
        if not isinstance(module_glob, str):
            raise TypeError(f'module_glob must be a glob string, got {module_glob!r}')
        self.module_glob = module_glob

    def weights(self, network):
        """The weights (≥ 2 dimensions) of the modules matching the glob; errors if none match.

        Biases and normalisation scales have no incoming weights, so 1-D weights are left alone.
        """
        # a glob may name the module ('features.0') or its weight ('features.0.weight')
        found = [module.weight for name, module in network.named_modules()
                 if (fnmatch.fnmatchcase(name, self.module_glob)
                     or fnmatch.fnmatchcase(f'{name}.weight' if name else 'weight',
                                            self.module_glob))
                 and isinstance(getattr(module, 'weight', None), torch.Tensor)
                 and module.weight.dim() >= 2]
        if not found:
            names = [name for name, module in network.named_modules()
                     if isinstance(getattr(module, 'weight', None), torch.Tensor) and name]
            raise ValueError(f'{type(self).__name__}: module_glob {self.module_glob!r} matches '
                             f'no module with a weight; modules with weights are {names}')
        return found

    @torch.no_grad()
    def __call__(self, network):
        """Apply the constraint to ``network`` in place."""
        # walking named_modules() every step costs more than the clipping on small networks
        cached = getattr(self, '_cached', None)
        if cached is None or cached[0] is not network:
            self._cached = cached = (network, self.weights(network))
        for weight in cached[1]:
            self.constrain(weight)

    def constrain(self, weight):
        raise NotImplementedError


class MaxNormConstraint(Constraint):
    """Clip the L2 norm of each output unit's incoming weights to ``max_norm``.

    For a weight of shape (out, in, *kernel) the norm of ``weight[j]`` is taken over all axes but
    the first; rows with a larger norm are rescaled to exactly ``max_norm``, others are untouched
    (Keras' ``MaxNorm``, used by pysster with ``max_norm = 3``).

    Parameters
    ----------
    max_norm: float
        The largest norm allowed, > 0.
    module_glob: str
        Glob over qualified module names, e.g. ``'features.*'``.
    """

    def __init__(self, max_norm, module_glob='*'):
        super().__init__(module_glob)
        if not isinstance(max_norm, (int, float)) or isinstance(max_norm, bool) or max_norm <= 0:
            raise ValueError(f'MaxNormConstraint: max_norm must be a positive number, '
                             f'got {max_norm!r}')
        self.max_norm = float(max_norm)

    def constrain(self, weight):
        norms = weight.flatten(1).norm(dim=1)
        scale = (self.max_norm / norms.clamp_min(1e-12)).clamp(max=1.0)
        weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))

    def __repr__(self):
        return f'MaxNormConstraint({self.max_norm}, {self.module_glob!r})'
