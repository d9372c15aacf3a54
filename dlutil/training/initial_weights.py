"""``--init-from``: start a network from trained weights, all of them or some layers, frozen or not.

    init = WeightInit('results/trials/t0003/best.pt', layers=('layer1', 'layer2'), freeze=())
    init.apply(model.network)          # before the first epoch: load, then freeze
    init.apply(model.network, load=False)   # resuming from last.pt: freeze only

Loading is strict: every tensor of the network under the chosen layers (all of it without
``layers``) must be in the checkpoint with the same shape, and the checkpoint may hold nothing
there that the network lacks. What does not fit is reported in one :class:`WeightInitError`
naming the missing, unexpected and differently shaped keys; ``partial=True`` loads what fits and
says what it left. Parameters and buffers (batch-norm statistics) are loaded alike.

Freezing sets ``requires_grad = False`` on parameters: the optimizer skips them (they get no
gradient), so they keep the loaded values. Buffers are not parameters: a frozen batch norm in
training mode still updates its running statistics, and a weight constraint applied after every
step (``MaxNormConstraint``) still applies to frozen weights it names.
"""
import logging
from dataclasses import dataclass

from dlutil import torchfile
from dlutil.errors import WeightInitError

__all__ = ['WeightInit', 'network_state', 'under', 'FREEZE_LOADED']

log = logging.getLogger('dlutil')

#: ``freeze=FREEZE_LOADED``: freeze every parameter that was loaded
FREEZE_LOADED = ('*',)
SHOWN = 6  # keys named per kind of problem; the count says how many more


def network_state(checkpoint, path):
    """The network's ``state_dict`` in what ``torchfile.load`` read from ``path``: a trial
    checkpoint of this tool (``{'model': {'network': …}}``) or a plain ``state_dict`` (as
    ``BaseModel.save_weights`` writes it)."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('model'), dict) \
            and isinstance(checkpoint['model'].get('network'), dict):
        return checkpoint['model']['network']
    if isinstance(checkpoint, dict) and checkpoint and all(
            isinstance(key, str) and hasattr(value, 'shape') for key, value in checkpoint.items()):
        return checkpoint
    raise WeightInitError(f'--init-from {path}: neither a checkpoint of this tool (best.pt, '
                          f'last.pt) nor a state_dict of tensors')


def under(key, prefixes):
    """True when the ``state_dict`` key ``key`` is the module prefix or lies under one of them."""
    return any(key == prefix or key.startswith(prefix + '.') for prefix in prefixes)


def _names(keys):
    keys = sorted(keys)
    more = f' and {len(keys) - SHOWN} more' if len(keys) > SHOWN else ''
    return ', '.join(keys[:SHOWN]) + more


@dataclass(frozen=True)
class WeightInit:
    """Where the first weights come from, which layers, and which of them stay fixed.

    Parameters
    ----------
    path: str
        A ``.pt`` file: a trial's ``best.pt``/``last.pt``, or a ``state_dict`` of tensors.
    layers: tuple of str
        Module prefixes (``'layer1'``, ``'features.0'``) to load; empty: the whole network.
    freeze: tuple of str or None
        Module prefixes whose parameters stop learning; :data:`FREEZE_LOADED` freezes every
        loaded parameter; empty or None freezes nothing.
    partial: bool
        Load the tensors that fit and warn about the rest, instead of refusing.
    """
    path: str
    layers: tuple = ()
    freeze: tuple = ()
    partial: bool = False

    def describe(self):
        """The settings as plain data, for ``search.json``."""
        return {'path': self.path, 'layers': list(self.layers), 'freeze': list(self.freeze or ()),
                'partial': self.partial}

    def apply(self, network, load=True):
        """Load the weights into ``network`` (when ``load``), then freeze; returns
        ``(loaded keys, frozen parameter names)``."""
        loaded = self.load(network) if load else self.selected_keys(network)
        frozen = self.frozen(network, loaded)
        for name, parameter in network.named_parameters():
            if name in frozen:
                parameter.requires_grad_(False)
        if load:
            what = f'layers {", ".join(self.layers)}' if self.layers else 'the whole network'
            log.debug(f'--init-from {self.path}: loaded {len(loaded)} tensors ({what})'
                + (f'; froze {len(frozen)} parameters' if frozen else ''))
        return loaded, frozen

    def selected_keys(self, network):
        return [key for key in network.state_dict() if not self.layers or under(key, self.layers)]

    def load(self, network):
        """Copy the checkpoint's tensors into ``network``; returns the keys loaded."""
        state = network_state(torchfile.load(self.path, '--init-from'), self.path)
        own = network.state_dict()
        self._check_prefixes(own, self.layers, '--init-layers')
        wanted = set(self.selected_keys(network))
        given = {key for key in state if not self.layers or under(key, self.layers)}
        missing = wanted - given
        unexpected = given - wanted
        shapes = {key: (tuple(state[key].shape), tuple(own[key].shape))
                  for key in wanted & given if tuple(state[key].shape) != tuple(own[key].shape)}
        problems = []
        if missing:
            problems.append(f'missing (in the network, not in the checkpoint): {_names(missing)}')
        if unexpected:
            problems.append(f'unexpected (in the checkpoint, not in the network): '
                            f'{_names(unexpected)}')
        if shapes:
            problems.append('shape mismatch: ' + _names(
                f'{key} (checkpoint {list(saved)}, network {list(mine)})'
                for key, (saved, mine) in shapes.items()))
        fits = sorted(wanted & given - set(shapes))
        if problems and not self.partial:
            raise WeightInitError(
                f'--init-from {self.path} does not fit the network '
                f'({type(network).__name__}): ' + '; '.join(problems)
                + '. Choose the layers that match with --init-layers PREFIX[,PREFIX], or load '
                  'what fits with --init-partial')
        if problems:
            log.warning(f'--init-from {self.path}: loading the {len(fits)} tensors that fit; '
                        + '; '.join(problems))
        if not fits:
            raise WeightInitError(f'--init-from {self.path}: no tensor of it fits the network')
        network.load_state_dict({key: state[key] for key in fits}, strict=False)
        return fits

    def frozen(self, network, loaded):
        """Names of the parameters to freeze."""
        if not self.freeze:
            return set()
        parameters = {name for name, _ in network.named_parameters()}
        if tuple(self.freeze) == FREEZE_LOADED:
            return parameters & set(loaded)
        self._check_prefixes(dict.fromkeys(parameters), self.freeze, '--freeze')
        return {name for name in parameters if under(name, self.freeze)}

    @staticmethod
    def _check_prefixes(keys, prefixes, flag):
        unknown = [prefix for prefix in prefixes if not any(under(key, [prefix]) for key in keys)]
        if unknown:
            tops = sorted({key.split('.')[0] for key in keys})
            raise WeightInitError(f'{flag} {",".join(unknown)}: no such module in the network '
                                  f'(its top-level modules: {", ".join(tops)})')
