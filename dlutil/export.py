"""``dlutil export RESULT -o MODEL_DIR``: the best model as a folder that needs torch alone.

    MODEL_DIR/model.pt2     the forward pass, as torch.export saved it (the batch size is free)
    MODEL_DIR/model.json    inputs, outputs, task names, alphabet, window length, training
    MODEL_DIR/README.md     how to load it

The exported forward is what ``-p`` computes for one batch (:func:`exported_forward`): inputs
cast to float32 (``input_dtype``), the network in evaluation mode, both strands averaged when the
model has ``strand_average``, then the output ``-p`` saves: class probabilities (softmax) for a
``ClassificationModel``, per-task probabilities (sigmoid, in float64 as ``-p`` computes them, then
float32) for a ``MultiLabelModel``, the network's output for a ``RegressionModel``, and
``'y_pred'`` of a dict output. Mixed precision (``amp``) is not exported: the folder computes in
float32. Before anything is written, the export is run on a batch of the test data (else the
validation data) and compared with ``-p``'s own computation; a Model whose
``prediction_output`` does something else is refused, naming the difference.
"""
import io
import json
import logging
import os
import sys

import numpy as np
import torch
from torch import nn

from dlutil import files, rng
from dlutil._program import program_name
from dlutil.data.batches import iterate, split_batch, to_numpy
from dlutil.definition import Definition
from dlutil.search import results, settings
from dlutil.search.best import refresh as refresh_best
from dlutil.sequences.onehot import reverse_complement
from dlutil.training import evaluation
from dlutil.training.tasks import ClassificationModel, MultiLabelModel

__all__ = ['export', 'build_parser', 'exported_forward', 'readme']

log = logging.getLogger('dlutil')

FORMAT = 1
TOLERANCE = 1e-6  # the exported forward against -p, on one batch, before anything is written
ACTIVATIONS = {'softmax': 'class probabilities (softmax over the last axis)',
               'sigmoid': 'per-task probabilities (sigmoid)',
               'none': "the network's output as it is (e.g. regression values)"}


class ExportedForward(nn.Module):
    """``-p``'s computation for one batch of float32 inputs, as one ``nn.Module``."""

    def __init__(self, network, activation, strand_average, pick):
        super().__init__()
        self.network, self.activation = network, activation
        self.strand_average, self.pick = strand_average, pick

    def _run(self, x):
        y = self.network(x)
        if isinstance(y, dict):
            y = y[self.pick]
        return y

    def forward(self, x):
        x = x.to(torch.float32)
        y = self._run(x)
        if self.strand_average:
            y = (y + self._run(reverse_complement(x))) / 2
        if self.activation == 'softmax':
            return torch.softmax(y, dim=-1)
        if self.activation == 'sigmoid':
            return torch.sigmoid(y.to(torch.float64)).to(torch.float32)
        return y


def exported_forward(model, x):
    """``(module, activation)``: :class:`ExportedForward` of a trained ``model`` (on the CPU, in
    evaluation mode) that gives what ``-p`` gives; ``x`` is an example batch (numpy)."""
    network = model.network.cpu().eval()
    with evaluation.evaluating(network):
        y = network(torch.as_tensor(x).to(torch.float32))
    keys = set(y) if isinstance(y, dict) else set()
    if isinstance(model, ClassificationModel):
        # -p: the network's own 'y_pred' probabilities (averaged), else softmax of the logits
        pick, post = ('y_pred', 'none') if 'y_pred' in keys else ('y_pred_loss', 'softmax')
        activation = 'softmax'
    elif isinstance(model, MultiLabelModel):
        pick, post, activation = 'y_pred_loss', 'sigmoid', 'sigmoid'
    else:  # BaseModel.prediction_output: 'y_pred' of a dict output
        pick, post, activation = 'y_pred', 'none', 'none'
    if keys and pick not in keys:
        raise ValueError(f'{type(model).__name__}: the network returns a dict without '
                         f'{pick!r} ({", ".join(sorted(keys))}); export needs it')
    return ExportedForward(network, post, bool(model.strand_average), pick), activation


def _example(definition, data_dir, batch_size, seed):
    """One batch of inputs, as numpy: the test data's first batch, else the validation data's."""
    rng.seed_everything(rng.data_seed(seed))
    if definition.has('get_test_generator'):
        generator = definition.generator('get_test_generator', data_dir)
    else:
        generator = definition.train_val_generators(data_dir, batch_size)[1]
    x, _ = split_batch(next(iterate(generator, batch_size)))
    if isinstance(x, (dict, list, tuple)):
        raise ValueError(f'{definition.path}: the network takes several inputs; export handles '
                         f'one input tensor')
    x = np.asarray(x)
    return np.concatenate([x, x]) if len(x) < 2 else x  # torch.export fixes a batch of 1


def _reference(model, x):
    """What ``-p`` gives for the batch ``x`` (``predict_batches``, then ``prediction_output``)."""
    with evaluation.evaluating(model.network):
        y = to_numpy(evaluation.score(model, x))
    return np.asarray(model.prediction_output(y), dtype=np.float64)


def _names(definition, model, width):
    names = getattr(definition.module, 'CLASS_NAMES', None) or getattr(model, 'task_names', None)
    return [str(n) for n in names] if names is not None and len(names) == width else None


def _alphabet(definition, x):
    alphabet = getattr(definition.module, 'ALPHABET', None)
    if alphabet is None and x.ndim in (3, 4) and x.shape[1] == 4:
        alphabet = 'ACGT'
    return alphabet


def export(result, out_dir, model_path=None, data_dir=None, batch_size=None, force=False):
    """Export the best model of ``result`` to the folder ``out_dir``; returns ``model.json``'s
    contents.

    Parameters
    ----------
    result: str
        A results directory (of a search or of ``--config``).
    out_dir: str
        The folder to write (refused when it holds files, unless ``force``).
    model_path, data_dir: str or None
        The def.py and data folder; default: those ``search.json`` records.
    batch_size: int or None
        Rows of the example batch (default: the search's batch size, at most 64).
    """
    from dlutil.runner import load_best_model  # the one way the best weights are loaded
    store = results.ResultStore(result)
    saved = settings.read(store)
    if saved is None:
        raise FileNotFoundError(f'{result}: no search.json; export takes a results directory '
                                f'of a search (-y) or of --config')
    model_path = model_path or saved['model']
    data_dir = data_dir or saved['data']['path']
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(f'-o {out_dir}: the folder holds files; choose a new folder or '
                              f'add --force')
    definition = Definition.load(model_path)
    settings.check_model(store, model_path, data_dir)
    with store.lock():
        best = refresh_best(store)
        model = load_best_model(definition, store, torch.device('cpu'))
    x = _example(definition, data_dir, min(batch_size or saved.get('batch_size') or 64, 64),
                 saved.get('seed', 0))
    module, activation = exported_forward(model, x)
    x_t = torch.as_tensor(x).to(torch.float32)
    batch = torch.export.Dim('batch', min=1)
    program = torch.export.export(module, (x_t,), dynamic_shapes={'x': {0: batch}})
    got = program.module()(x_t).detach().numpy().astype(np.float64)
    want = _reference(model, x)
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE):
        worst = np.abs(got - want).max() if got.shape == want.shape else \
            f'shape {got.shape} against {want.shape}'
        raise ValueError(f'{type(model).__name__}: the exported forward does not reproduce -p '
                         f'(largest difference {worst}); a Model whose prediction_output or '
                         f'forward does more than {", ".join(ACTIVATIONS)} cannot be exported')
    width = int(np.prod(want.shape[1:])) if want.ndim > 1 else 1
    search_json = {key: saved.get(key) for key in ('epoch', 'eta', 'batch_size', 'sampler',
                                                   'trials', 'seed', 'config', 'init')
                   if saved.get(key) is not None}
    test_path = store.path('test_result.json')
    description = {
        'format': FORMAT,
        'program': 'model.pt2',
        'load': "torch.export.load('model.pt2').module()",
        'inputs': {'shape': ['batch', *map(int, x.shape[1:])], 'dtype': 'float32',
                   'alphabet': _alphabet(definition, x), 'window_length': int(x.shape[-1]),
                   'layout': 'one-hot rows in alphabet order, positions on the last axis'
                   if _alphabet(definition, x) else None},
        'outputs': {'shape': ['batch', *map(int, want.shape[1:])], 'dtype': 'float32',
                    'names': _names(definition, model, width), 'activation': activation,
                    'meaning': ACTIVATIONS[activation],
                    'strand_average': bool(model.strand_average)},
        'model': {'class': type(model).__name__, 'network': type(model.network).__name__,
                  'def_py': os.path.abspath(model_path), 'amp': model.amp},
        'training': {'result': store.root, 'search': search_json,
                     'best': {key: best[key] for key in ('trial', 'epoch', 'reward', 'config')},
                     'test': results.read_json(test_path) if os.path.exists(test_path)
                     else None},
        'versions': {'torch': torch.__version__, 'python': sys.version.split()[0]},
    }
    os.makedirs(out_dir, exist_ok=True)
    targets = [os.path.join(out_dir, name) for name in ('model.pt2', 'README.md', 'model.json')]
    with files.atomic_paths(*targets) as (program_tmp, readme_tmp, json_tmp):
        buffer = io.BytesIO()  # torch.export.save wants a name ending in .pt2, or a buffer
        torch.export.save(program, buffer)
        with open(program_tmp, 'wb') as handle:
            handle.write(buffer.getvalue())
        with open(readme_tmp, 'w', encoding='utf-8') as handle:
            handle.write(readme(description))
        with open(json_tmp, 'w', encoding='utf-8') as handle:
            json.dump(description, handle, indent=2)
            handle.write('\n')
    log.info(f'exported trial {best["trial"]} (epoch {best["epoch"]}) of {store.root} to '
             f'{out_dir}: model.pt2, model.json, README.md; input {description["inputs"]["shape"]}, '
             f'output {description["outputs"]["shape"]} ({ACTIVATIONS[activation]})')
    return description


def readme(description):
    """The folder's README.md."""
    inputs, outputs = description['inputs'], description['outputs']
    shape = ', '.join(map(str, inputs['shape'][1:]))
    return f"""# An exported model

Trained by dlutil ({description['model']['class']}, network {description['model']['network']});
`model.json` describes its inputs, outputs and training. Loading needs PyTorch alone (>= 2.3),
neither the def.py nor dlutil:

```python
import torch
model = torch.export.load('model.pt2').module()
x = torch.zeros(8, {shape}, dtype=torch.float32)   # a batch of any size
with torch.no_grad():
    y = model(x)                                      # shape {outputs['shape']}
```

- Input: float32, shape (batch, {shape}){f", one-hot {inputs['alphabet']} in that row order, window of {inputs['window_length']} positions" if inputs['alphabet'] else ''}.
- Output: {outputs['meaning']}, float32{f"; columns {', '.join(outputs['names'])}" if outputs['names'] else ''}.
- Both strands averaged inside the model: {'yes' if outputs['strand_average'] else 'no'}.
- It computes what `-p` computes (checked to {TOLERANCE:g} when exported), in float32: the
  model's mixed precision (`amp`: {description['model']['amp']}) is not part of it.
"""


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(
        prog=f'{program_name()} export',
        description='Write the best model of a results directory as a folder that loads with '
                    'torch alone: model.pt2 (torch.export), model.json (inputs, outputs, task '
                    'names, alphabet, window length, training settings) and README.md.')
    parser.add_argument('result', metavar='RESULT_DIR', help='a results directory (-y or --config)')
    parser.add_argument('-o', '--output', required=True, metavar='MODEL_DIR',
                        help='the folder to write')
    parser.add_argument('-f', '--model', default=None, metavar='DEF_PY',
                        help='the def.py (default: the one search.json records)')
    parser.add_argument('-d', '--data', default=None, metavar='DATA_DIR',
                        help='the data folder, for one example batch (default: search.json\'s)')
    parser.add_argument('--force', action='store_true',
                        help='write into MODEL_DIR even though it holds files')
    parser.add_argument('--debug', action='store_true', help='full tracebacks on errors')
    return parser


def run(args):
    """The parsed ``export`` command line (:func:`build_parser`)."""
    export(args.result, args.output, args.model, args.data, force=args.force)
