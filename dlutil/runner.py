"""What one command line does: search (-y), then evaluate (-e) and predict (-p) with the best trial."""
import glob
import logging
import os

import numpy as np
import torch

from dlutil.search import results
from dlutil.definition import Definition, DefinitionError
from dlutil.search.hyperband import HyperbandSearch
from dlutil.search.executors import tune_malloc

log = logging.getLogger('dlutil')


def choose_device(cpu=False):
    """``--cpu`` forces the CPU; otherwise CUDA when available, with a notice when it is not."""
    if cpu:
        return torch.device('cpu')
    if torch.cuda.is_available():
        return torch.device('cuda')
    log.info('CUDA is not available: running on the CPU.')
    return torch.device('cpu')


def prediction_inputs(data_dir, pattern):
    """The files ``--predict`` matches, relative to ``--data``, sorted."""
    full = os.path.join(data_dir, pattern)
    paths = [full] if os.path.isfile(full) else sorted(
        p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
    if not paths:
        raise FileNotFoundError(f'--predict {pattern!r}: no file matches {full!r}')
    return paths


def prediction_names(paths, data_dir):
    """``<file name>`` per input; the path relative to ``--data`` where two names collide."""
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) < len(names):
        names = [os.path.relpath(p, data_dir).replace(os.sep, '__') for p in paths]
    return names


def run(args):
    """Carry out the command line ``args`` (see :func:`main.build_parser`)."""
    from dlutil.variants import command as variants_command
    if not (args.hyper or args.eval or args.predict or args.interpret or
            variants_command.wanted(args)):
        raise ValueError('nothing to do: pass -y/--hyper to search, -e/--eval to test the best '
                         'trial, --interpret to interpret it and/or -p/--predict PATTERN to '
                         'predict (or --vep VCF, --attribute)')
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f'--data {args.data}: no such directory')
    pred_paths = prediction_inputs(args.data, args.predict) if args.predict else []
    attribute = getattr(args, 'attribute', False)
    definition = Definition.load(args.model, hyper=args.hyper,
                                 eval=args.eval or args.interpret or attribute,
                                 predict=bool(args.predict))
    device = choose_device(args.cpu)
    tune_malloc()
    store = results.ResultStore(args.result)
    with store.lock():
        _run_locked(args, definition, device, store, pred_paths)


def worker_devices(device, gpus):
    """Devices for worker processes: the CPU, or the ``--gpus`` (default: every visible GPU)."""
    if device.type != 'cuda':
        if gpus:
            raise ValueError(f'--gpus {",".join(map(str, gpus))}: CUDA is not in use')
        return ['cpu']
    count = torch.cuda.device_count()
    gpus = list(range(count)) if gpus is None else gpus
    wrong = [g for g in gpus if not 0 <= g < count]
    if wrong:
        raise ValueError(f'--gpus: no CUDA device {wrong}; this machine has {count} '
                         f'(0 to {count - 1})')
    return [f'cuda:{g}' for g in gpus]


def _run_locked(args, definition, device, store, pred_paths):
    if args.hyper:
        search = HyperbandSearch(definition, store, args.epoch, args.eta, args.seed,
                                 args.batch_size, args.data, device, workers=args.workers,
                                 devices=worker_devices(device, args.gpus),
                                 sampler=args.sampler, trials=args.trials,
                                 threads=args.threads)
        best = search.run()
        summary = store.read_best()
        log.info(f'best: trial {best["trial"]}, reward {best["reward"]:.6g} at its '
                 f'{best["epochs"]}-epoch rung; -e and -p use its best epoch, '
                 f'{summary["epoch"]} (reward {summary["reward"]:.6g}); config '
                 f'{summary["config"]}')
    from dlutil.variants import command as variants_command
    if args.eval or args.predict or args.interpret or variants_command.wanted(args):
        model = variants_command.load_checkpoint_model(definition, args.checkpoint, device) \
            if getattr(args, 'checkpoint', None) else load_best_model(definition, store, device)
    if variants_command.wanted(args):  # before --interpret: its summary links attributions
        variants_command.run(args, definition, store, model)
    if args.eval:
        evaluate(definition, store, model, args.data, args.batch_size)
    if args.interpret:
        from dlutil.interpret import kernel_report as interpret  # deferred: matplotlib and scipy only when asked for
        interpret.run(definition, store, model, args.data, args.batch_size)
    if args.predict:
        predict(definition, store, model, pred_paths, args.data, args.batch_size)


def load_best_model(definition, store, device):
    """The best trial's model with its best-epoch weights."""
    best = store.read_best()
    if best is None:
        raise FileNotFoundError(f'--result {store.root}: no trained model there (no best.json); '
                                f'run with -y first')
    path = store.trial_file(best['trial'], 'best.pt')
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path}: the best trial\'s checkpoint is missing')
    model = definition.Model(best['config'], device=device)
    checkpoint = results.load_checkpoint(path, map_location=model.device)
    model.load_state_dict(checkpoint['model'], optimizer=False)
    log.info(f'using trial {best["trial"]}, epoch {checkpoint["epoch"]}')
    return model


def evaluate(definition, store, model, data_dir, batch_size):
    generator = definition.generator('get_test_generator', data_dir)
    values = model.evaluate(generator, batch_size)
    results.write_json(store.path('test_result.json'), values)
    log.info('test: ' + ', '.join(f'{k}={v:.6g}' for k, v in values.items()))
    return values


def predict(definition, store, model, paths, data_dir, batch_size):
    names = prediction_names(paths, data_dir)
    folder = store.path('predictions')
    for path, name in zip(paths, names):
        generator = definition.generator('get_pred_generator', path)
        y_pred = model.predict(generator, batch_size)
        if definition.has('save_prediction'):
            definition.call('save_prediction', path, y_pred)
            log.info(f'predicted {path} (saved by def.py save_prediction)')
            continue
        arrays = y_pred if isinstance(y_pred, dict) else {None: y_pred}
        for key, array in arrays.items():
            target = os.path.join(folder, name + (f'.{key}' if key else '') + '.npy')
            results.atomic_write(target, lambda f, a=array: np.save(f, np.asarray(a)), mode='wb')
            log.info(f'predicted {path}: {np.shape(array)} -> {target}')
    return folder


__all__ = ['run', 'choose_device', 'DefinitionError']
