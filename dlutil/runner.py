"""What one command line does: search (-y), then evaluate (-e) and predict (-p) with the best trial."""
import functools
import logging
import os

import torch

from dlutil import preflight, rng
from dlutil._program import DEBUG_HINT, error_message, has_useful_traceback
from dlutil.errors import StorageError
from dlutil.definition import Definition, DefinitionError, exit_error
from dlutil.predictions import predict, prediction_inputs
from dlutil.processes import tune_malloc
from dlutil.search import checkpoints, init_from, results, settings, single
from dlutil.search.best import refresh as refresh_best
from dlutil.search.executors import make_executor
from dlutil.search.hyperband import HyperbandSearch
from dlutil.search.report import BackgroundReport
from dlutil.search.settings import SearchSettings, choose_threads
from dlutil.search.tensorboard import TensorBoardLog
from dlutil.threads import usable_cores

log = logging.getLogger('dlutil')


def choose_device(cpu=False):
    """``--cpu`` forces the CPU; otherwise CUDA when available, with a notice when it is not."""
    if cpu:
        return torch.device('cpu')
    if torch.cuda.is_available():
        return torch.device('cuda')
    log.info('CUDA is not available: running on the CPU.')
    return torch.device('cpu')


def run(args):
    """Carry out the command line ``args`` (see :func:`main.build_parser`); returns the exit
    status: 1 when one of the outputs asked for (--vep, --attribute, -e, --interpret, -p)
    failed, after the others ran (:func:`run_modes`).

    Only a def.py can call ``sys.exit`` on the way: that is a :class:`DefinitionError`.
    """
    try:
        return _run(args)
    except SystemExit as exit:
        raise exit_error(args.model, exit) from None


def _run(args):
    from dlutil.variants import command as variants_command
    train = trains(args)
    if not (train or args.eval or args.predict or args.interpret or
            variants_command.wanted(args)):
        raise ValueError('nothing to do: pass -y/--hyper to search (or --config to train one '
                         'configuration), -e/--eval to test the best trial, --interpret to '
                         'interpret it and/or -p/--predict PATTERN to predict (or --vep VCF, '
                         '--attribute)')
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f'--data {args.data}: no such directory')
    pred_paths = prediction_inputs(args.data, args.predict) if args.predict else []
    attribute = getattr(args, 'attribute', False)
    definition = Definition.load(args.model, hyper=train,
                                 eval=args.eval or args.interpret or attribute,
                                 predict=bool(args.predict))
    device = choose_device(args.cpu)
    if train and args.ray is None:
        check_ddp(args.ddp, device)
    tune_malloc()
    if not train and not getattr(args, 'checkpoint', None) and \
            not os.path.isdir(args.result):  # refused before the lock makes the folder
        raise FileNotFoundError(f'--result {args.result}: no trained model there (no such '
                                f'directory); run with -y first, or give --checkpoint PATH')
    store = results.ResultStore(args.result)
    with store.lock():
        return _run_locked(args, definition, device, store, pred_paths)


def trains(args):
    """True when the command line trains: ``-y`` (a search) or ``--config`` (one configuration)."""
    return bool(args.hyper or getattr(args, 'config', None) is not None)


def check_ddp(world, device):
    """Refuse a ``--ddp`` group on the CPU larger than the cores this process may use: its
    processes would only take turns on them (on CUDA, each rank needs a GPU of ``--gpus``,
    which the executor checks)."""
    cores = usable_cores()
    if device.type == 'cpu' and world > cores:
        raise ValueError(f'--ddp {world}: a group of {world} processes on the CPU needs a core '
                         f'each, and this process may use {cores}; use --ddp {cores} or fewer '
                         f'(any N gives the same results, to float rounding)')


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
    settings.fill_flags(args, store)  # flags left out: the existing search's
    train = trains(args)
    args.threads = choose_threads(args.threads, args.workers, train and args.ray is not None)
    torch.set_num_threads(args.threads)  # -e, -p and --interpret run in this process
    search = executor = init = None
    if train:
        config = getattr(args, 'config', None)
        if config is not None:  # --config: one configuration, as a search of one
            config = single.check_config(definition, single.read_config(config))
        single.check_kind(store, config, args.restart)
        init = init_from.from_args(args, store)
        wanted = SearchSettings(
            max_epochs=args.epoch, eta=args.eta, seed=args.seed, batch_size=args.batch_size,
            data_dir=args.data, device=device, workers=args.workers,
            devices=worker_devices(device, args.gpus), sampler=args.sampler,
            trials=args.trials, threads=args.threads, ray=args.ray,
            gpus_per_trial=args.gpus_per_trial, ddp=args.ddp, restart=args.restart,
            keep_results=args.keep_results, keep_checkpoints=args.keep_checkpoints, init=init,
            config=config)
        kind = HyperbandSearch if config is None else single.ConfigSearch
        search = kind(definition, store, wanted, watchers=[
            checkpoints.CheckpointKeeper(store, args.keep_checkpoints),
            BackgroundReport(store.root, wanted.report_every)] + (
            [TensorBoardLog(store.root)] if getattr(args, 'tensorboard', False) else []))
        # before anything is written: a refused executor (Ray) leaves no search.json
        executor = make_executor(search.settings, definition, store)
    try:
        data_seed = _preflight(args, definition, device, store, search, pred_paths, executor)
        if init is not None:
            init_from.check(definition, init, search.sampler.sample([0])[0][0], device)
    except BaseException:
        if executor is not None:
            executor.stop(wait=False)
        raise
    if train:
        search.run(executor)  # ends with a summary; raises when every trial failed
    from dlutil.variants import command as variants_command
    if args.eval or args.predict or args.interpret or variants_command.wanted(args):
        if getattr(args, 'checkpoint', None):
            model = variants_command.load_checkpoint_model(definition, args.checkpoint, device)
        else:
            if not train:
                settings.check_model(store, definition.path, args.data)
                refresh_best(store)  # best.json follows search.csv, whatever was cut short
            model = load_best_model(definition, store, device)
        rng.seed_everything(data_seed)  # the test and prediction loaders, as in preflight
    modes = {  # in this order: --interpret's summary links the attributions
        '--vep': args.vep and (lambda: variants_command.run(args, definition, store, model)),
        '--attribute': args.attribute and (lambda: attribute(args, definition, store, model)),
        '-e': args.eval and (lambda: evaluate(definition, store, model, args.data,
                                              args.batch_size)),
        '--interpret': args.interpret and (lambda: interpret(args, definition, store, model)),
        '-p': args.predict and (lambda: predict(definition, store, model, pred_paths,
                                                args.data, args.batch_size)),
    }
    return run_modes({flag: work for flag, work in modes.items() if work}, args.debug)


def run_modes(modes, debug=False):
    """Run each of ``modes`` (flag -> callable), whatever the others do: a failure is logged as
    one line, ``error: FLAG: message`` (with the traceback under ``--debug``), and the next mode
    runs. A full or failing disk (:class:`StorageError`) or memory running out stops them all:
    every later mode would fail the same way, and the one-line error says what to do.

    Returns
    -------
    int: the exit status, 1 when a mode failed (a closing line names them), else 0
    """
    failed, useful = [], False
    for flag, work in modes.items():
        try:
            work()
        except (StorageError, MemoryError):
            raise
        except Exception as error:
            failed.append(flag)
            useful = useful or has_useful_traceback(error)
            message = error_message(error)  # one that names its flag already keeps its words
            named = message.startswith((f'{flag}:', f'{flag} '))
            log.error(f'error: {message if named else f"{flag}: {message}"}', exc_info=debug)
    if failed:
        done = [flag for flag in modes if flag not in failed]
        their = 'its' if len(done) == 1 else 'their'
        log.error(f'{" and ".join(failed)} failed'
                  + (f'; {", ".join(done)} finished and wrote {their} outputs' if done else '')
                  + (f' {DEBUG_HINT}' if useful and not debug else ''))
        return 1
    return 0


def attribute(args, definition, store, model):
    """``--attribute`` with ``model``."""
    from dlutil.interpret import attribute  # deferred: tangermeme, modisco-lite
    attribute.run(definition, store, model, args.data, args.batch_size, top=args.attribute_top,
                  target=args.attribute_target, logos=args.attribute_logos, motifs=args.motifs,
                  window=args.modisco_window)


def interpret(args, definition, store, model):
    """``--interpret`` with ``model``."""
    from dlutil.interpret import kernel_report  # deferred: matplotlib and scipy
    kernel_report.run(definition, store, model, args.data, args.batch_size,
                      top=args.interpret_kernels)


def _preflight(args, definition, device, store, search, pred_paths, executor=None):
    """Data faults stop the command here, before any trial (see :mod:`dlutil.preflight`);
    returns the seed the loaders run under. With an executor, the check runs where it runs
    trials (a worker of a pool: the search then waits on nothing this process imports)."""
    if search is not None:
        seed = search.seed
        configs = [config for config, _ in search.sampler.sample(range(preflight.CONFIGS_TRIED))]
    else:
        best, settings = store.read_best(), store.path('search.json')
        seed = results.read_json(settings).get('seed', 0) if os.path.exists(settings) else 0
        configs = [best['config']] if best else []
    check = functools.partial(_seeded_preflight, rng.data_seed(seed), args.data,
                              args.batch_size, device, configs, trains(args), args.eval,
                              list(pred_paths))
    if executor is None:
        check(definition)
    else:
        executor.call(check)
    return rng.data_seed(seed)


def _seeded_preflight(data_seed, data_dir, batch_size, device, configs, hyper, test, pred_paths,
                      definition):
    rng.seed_everything(data_seed)  # the loaders draw what they draw in the search
    preflight.run(definition, data_dir, batch_size, device, configs, hyper=hyper, test=test,
                  pred_paths=pred_paths)


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
    if best.get('epoch') is not None and checkpoint['epoch'] != best['epoch']:
        # only while a search is unfinished: the trial trained past its recorded rung
        log.warning(f'{path} holds epoch {checkpoint["epoch"]}, trained after the rung '
                    f'search.csv records (best epoch {best["epoch"]}); using it')
    log.info(f'using trial {best["trial"]}, epoch {checkpoint["epoch"]}')
    return model


def evaluate(definition, store, model, data_dir, batch_size):
    generator = definition.generator('get_test_generator', data_dir)
    values = model.evaluate(generator, batch_size)
    results.write_json(store.path('test_result.json'), values)
    log.info('test: ' + ', '.join(f'{k}={v:.6g}' for k, v in values.items()))
    return values


__all__ = ['run', 'choose_device', 'DefinitionError']
