"""Running rung evaluations as Ray tasks on a cluster (``--ray ADDRESS``).

The search itself does not change: it hands the same :class:`~dlutil.search.executors.Job` s to
this executor as to the local ones, with the same per-trial seeds, so a search on a cluster gives
the results of a local run with the same ``--seed`` (and ``--threads``).

No shared filesystem is assumed. A task never sees the results directory: it trains in a
node-local temporary directory, and the files travel through Ray's object store to a small
*sink* actor pinned to the driver's node, which alone writes ``--result``:

* at the start of a task, the sink hands it the trial's ``last.pt`` (a promoted trial resumes
  from it, as locally);
* after every epoch the task sends ``history.csv``, ``last.pt`` and, when the epoch was the best
  so far, word to make ``best.pt`` that checkpoint; it waits until the sink has written them, so
  ``--result`` always holds the trial's last finished epoch, exactly as a local run would; the
  task's log lines (the epoch lines) go with them, and the driver shows them (it asks the sink
  for new ones every second).

When a node dies mid-trial, Ray runs the task again (``max_retries``) and the new attempt
resumes from the last epoch the sink holds. Ctrl-C on the driver closes the sink (nothing more
is written), kills the search's running tasks and waits until they are gone; re-running the
command continues the search from ``--result``. With ``--ddp N`` a task reserves N times a
trial's resources on one node and runs the trial's process group inside it. The data must be
readable on every node at the ``--data`` path (shared storage, or the same copy on each node);
the def.py travels with the tasks, as do the environment variables it reads.
"""
import concurrent.futures
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import threading

import torch

from dlutil.definition import Definition, load_module
from dlutil.processes import tune_malloc
from dlutil.search import results
from dlutil.search.executors._job import TrialData, run_job
from dlutil.search.executors.ddp import run_group
from dlutil.search.fingerprint import read_environment

INSTALL_HINT = ("--ray needs Ray: pip install 'dlutil[ray]' (or pip install -e '.[ray]' in a "
                "checkout), on the driver and on every node of the cluster")
MAX_RETRIES = 3
STOP_SECONDS = 30  # how long an interrupted search waits for its tasks to be killed
CONNECT_SECONDS = 5  # how long the head of a cluster may take to answer (--ray HOST:PORT)
LINES_SECONDS = 1.0  # how often the driver shows the tasks' log lines

log = logging.getLogger('dlutil')


def import_ray():
    """``import ray``, or a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return ray


def check_address(address, seconds=CONNECT_SECONDS):
    """A ValueError naming ``address`` unless its head node answers within ``seconds``.

    Ray itself retries an address where nothing listens for minutes, printing only its own
    retry lines; a TCP connection to ``HOST:PORT`` tells at once. ``auto`` and no address at all
    (a new local Ray) are left to Ray, which fails fast there.

    Parameters
    ----------
    address: str or None
        ``--ray``'s value: ``'auto'``, ``'HOST:PORT'`` (``ray://`` too), or None / ``''`` for
        ``RAY_ADDRESS``.
    """
    flag = f'--ray {address}'
    if not address:
        address = os.environ.get('RAY_ADDRESS', '')
        flag = f'RAY_ADDRESS={address}'
    if not address or address in ('auto', 'local'):
        return
    host, colon, port = address.split('://', 1)[-1].rpartition(':')
    if not colon or not port.isdigit() or not host:
        raise ValueError(f'{flag}: expected auto or HOST:PORT of the Ray head node')
    try:
        socket.create_connection((host.strip('[]'), int(port)), timeout=seconds).close()
    except OSError as error:
        reason = 'no answer' if isinstance(error, TimeoutError) else (
            error.strerror or type(error).__name__).lower()
        raise ValueError(f'{flag}: no Ray head node answers there within {seconds} s ({reason}); '
                         f'start the cluster (ray start --head) or give its address') from None


class ResultSink:
    """The only writer of the results directory in a Ray search (a Ray actor on the driver's node).

    Parameters
    ----------
    root: str
        The results directory (``--result``), on the driver's node.
    """

    def __init__(self, root):
        self.store = results.ResultStore(root)
        self.closed = False
        self.lines = []  # (level, message) from the tasks, until the driver takes them

    def take_lines(self):
        """The tasks' log lines received since the last call, oldest first."""
        lines, self.lines = self.lines, []
        return lines

    def close(self):
        """Write nothing more: the driver was interrupted. A Ray actor runs one call at a time,
        so once this returns no write is under way and none will follow."""
        self.closed = True
        return True

    def _check_open(self):
        if self.closed:
            raise RuntimeError('the search was interrupted: its results directory is closed')

    def fetch(self, trial):
        """The trial's ``last.pt`` as bytes, or None before its first epoch."""
        self._check_open()
        path = self.store.trial_file(trial, 'last.pt')
        if not os.path.exists(path):
            return None
        with open(path, 'rb') as handle:
            return handle.read()

    def put(self, trial, files, lines=()):
        """Write ``files`` ({name: bytes}) of ``trial`` atomically, in the order a local trial
        writes them: history first, then last.pt, then best.pt; keep its log ``lines`` for the
        driver."""
        self._check_open()
        self.lines.extend(lines)
        order = ['history.csv', 'error.txt', 'last.pt', 'best.pt']
        for name in sorted(files, key=order.index):
            path = self.store.trial_file(trial, name)
            if name == 'best.pt' and files[name] == results.LINK_TO_LAST:
                results.link_checkpoint(self.store.trial_file(trial, 'last.pt'), path)
            else:
                results.atomic_write(path, lambda f, data=files[name]: f.write(data), mode='wb')
        return True


class _Lines(logging.Handler):
    """The ``dlutil`` log lines of a task, held until they travel with its files."""

    def __init__(self):
        super().__init__()
        self.held = []

    def emit(self, record):
        self.held.append((record.levelno, self.format(record)))

    def take(self):
        held, self.held = self.held, []
        return held


class _Uploader:
    """Sends a trial's files (and log lines) from the task's scratch directory to the sink after
    each epoch."""

    def __init__(self, ray, sink, store, trial, lines):
        self.ray, self.sink, self.store, self.trial, self.lines = ray, sink, store, trial, lines

    def send(self, files):
        self.ray.get(self.sink.put.remote(self.trial, files, self.lines.take()))

    def __call__(self, epoch=None, checkpoint=True):
        self.send(results.trial_files(self.store, self.trial, checkpoint))


_LOADED = {}  # per worker process: (def digest, environment, data, batch size) -> (def, generators)


def _definition(source, def_path, environment, data_dir, batch_size):
    """The def.py and its generators in this worker, loaded once per process.

    The def.py is read from ``def_path`` when this node has that file unchanged (its helper
    modules lie beside it), else from the copy sent with the task.
    """
    digest = hashlib.sha256(source).hexdigest()
    key = (digest, tuple(sorted(environment.items())), data_dir, batch_size)
    if key not in _LOADED:
        for name, value in environment.items():  # what the def.py reads, as the driver had it
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if not (os.path.isfile(def_path) and
                hashlib.sha256(results.read_bytes(def_path)).hexdigest() == digest):
            folder = os.path.join(tempfile.gettempdir(), f'dlutil-def-{digest[:16]}')
            os.makedirs(folder, exist_ok=True)
            def_path = os.path.join(folder, os.path.basename(def_path))
            results.atomic_write(def_path, lambda f: f.write(source), mode='wb')
        definition = Definition(def_path, load_module(def_path))
        _LOADED.clear()  # one def.py at a time: a worker serves one search
        _LOADED[key] = (definition, TrialData(definition, data_dir, batch_size))
    return _LOADED[key]


def run_trial(source, def_path, environment, data_dir, batch_size, job, threads, sink, world=1,
              log_level=logging.INFO):
    """A Ray task: one rung evaluation in a node-local scratch directory; returns the outcome.

    With ``world`` > 1 the task runs the trial's ``--ddp`` group: ``world`` processes on this
    node (:func:`dlutil.search.executors.ddp.run_group`); rank 0 trains in the scratch directory and
    hands each epoch's files to this process, which sends them to the sink.

    Parameters
    ----------
    source: bytes
        The def.py's text.
    def_path: str
        Its path on the driver (used when this node has the same file).
    environment: dict
        The environment variables the def.py reads, as the driver has them.
    job: executors.Job
    threads: int
        torch CPU threads.
    sink: ray.actor.ActorHandle
        The :class:`ResultSink`.
    world: int
        Processes of the trial's data-parallel group (``--ddp``).
    log_level: int
        The driver's: log lines of this level and above go to it.
    """
    import ray
    tune_malloc()
    torch.set_num_threads(threads)
    gpus = ray.get_gpu_ids() if torch.cuda.is_available() else []
    device = torch.device('cuda' if gpus else 'cpu')
    definition, data = _definition(source, def_path, environment, data_dir, batch_size)
    scratch = tempfile.mkdtemp(prefix=f'dlutil-{job.trial}-')
    logger, lines = logging.getLogger('dlutil'), _Lines()
    kept = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:], logger.propagate = [lines], False
    logger.setLevel(log_level)
    try:
        store = results.ResultStore(scratch)
        last = ray.get(sink.fetch.remote(job.trial))
        if last is not None:
            results.atomic_write(store.trial_file(job.trial, 'last.pt'),
                                 lambda f: f.write(last), mode='wb')
        upload = _Uploader(ray, sink, store, job.trial, lines)
        if world > 1:
            # Ray shows this task only its own GPUs (CUDA_VISIBLE_DEVICES): one per rank
            devices = [f'cuda:{i}' for i in range(len(gpus))] if gpus else ['cpu']
            outcome = run_group(world, definition.path, data_dir, batch_size, store, job,
                                threads, devices, on_epoch=upload.send)
        else:
            outcome = run_job(definition, data, store, job, device, batch_size,
                              progress=False, after_epoch=upload)
        upload(checkpoint=False)  # the final history (and error.txt of a failed trial)
        return outcome
    finally:
        logger.handlers[:], logger.propagate = kept[0], kept[2]
        logger.setLevel(kept[1])
        shutil.rmtree(scratch, ignore_errors=True)


class RayExecutor:
    """Runs jobs as Ray tasks, ``threads`` CPUs (and ``gpus`` GPUs) each.

    Parameters
    ----------
    address: str or None
        ``'auto'``, ``'HOST:PORT'``, or None: ``RAY_ADDRESS`` when set, else a new local Ray.
    gpus: float or None
        GPUs per trial (a fraction shares one); None: 1 when the cluster has GPUs and ``device``
        is not the CPU, else 0.
    world: int
        ``--ddp``: each task runs a group of ``world`` processes and reserves ``world`` times
        ``threads`` CPUs and ``gpus`` GPUs, on one node.
    """

    queued = 0  # jobs handed out beyond one per worker: none, Ray queues its own

    def __init__(self, definition, data_dir, batch_size, store, threads, device=None,
                 address=None, gpus=None, world=1):
        ray = self.ray = import_ray()
        self.definition = definition
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        if not ray.is_initialized():
            check_address(address)
            ray.init(address=address or None, log_to_driver=False,
                     logging_level='WARNING', configure_logging=True)
            self._started = True
        else:
            self._started = False
        resources = ray.cluster_resources()
        if gpus is None:
            on_cpu = device is not None and str(device) == 'cpu'
            gpus = 1.0 if resources.get('GPU', 0) and not on_cpu else 0.0
        if world > 1 and gpus and gpus != int(gpus):
            raise ValueError(f'--ddp {world} on GPUs needs whole GPUs per process: '
                             f'--gpus-per-trial 1 (or more), got {gpus}')
        cpus = resources.get('CPU', 1)
        per_cpus, per_gpus = threads * world, gpus * world
        _check_fits(ray, per_cpus, per_gpus, threads, world)
        self.workers = max(1, int(cpus // per_cpus) if not gpus
                           else int(min(cpus // per_cpus, resources.get('GPU', 0) // per_gpus)))
        here = ray.get_runtime_context().get_node_id()
        self.sink = ray.remote(num_cpus=0)(ResultSink).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
        ).remote(store.root)
        self.args = (results.read_bytes(definition.path), os.path.abspath(definition.path),
                     read_environment(definition.path), os.path.abspath(data_dir), batch_size)
        self.threads, self.world = threads, world
        self.task = ray.remote(run_trial).options(num_cpus=per_cpus, num_gpus=per_gpus,
                                                  max_retries=MAX_RETRIES, retry_exceptions=False)
        self.pending = {}
        self._stopping = threading.Event()
        self._shower = threading.Thread(target=self._show_lines, name='dlutil-ray-lines',
                                        daemon=True)

    def _show_lines(self):
        """Every :data:`LINES_SECONDS` until :meth:`stop` (or Ray is shut down): the tasks' log
        lines, logged here."""
        while not self._stopping.wait(LINES_SECONDS) and self._show():
            pass

    def _show(self):
        """Log the lines the sink holds; False once Ray is no longer initialised (a call would
        start a new Ray)."""
        if not self.ray.is_initialized():
            return False
        lines = _quietly(lambda: self.ray.get(self.sink.take_lines.remote(),
                                              timeout=STOP_SECONDS)) or []
        for level, message in lines:
            log.log(level, message)
        return True

    def call(self, fn):
        """``fn(definition)`` here; returns what it returns."""
        return fn(self.definition)

    def submit(self, job):
        if self._shower.ident is None and not self._stopping.is_set():
            self._shower.start()  # with the first task: an executor never used starts no thread
        ref = self.task.remote(*self.args, job, self.threads, self.sink, self.world,
                               log.getEffectiveLevel())
        future = ref.future()
        self.pending[future] = ref
        future.add_done_callback(lambda f: self.pending.pop(f, None))
        return _unwrapping(future)

    def stop(self, wait=True):
        """End the search's use of the cluster; ``wait=False`` (interrupted): first close the
        sink, so nothing more reaches ``--result``, then kill the running tasks and wait (at
        most :data:`STOP_SECONDS`) until they are gone."""
        self._stopping.set()
        if self._shower.is_alive():
            self._shower.join()
        if wait:
            self._show()  # the last lines
        else:
            refs = list(self.pending.values())
            _quietly(lambda: self.ray.get(self.sink.close.remote(), timeout=STOP_SECONDS))
            for ref in refs:
                _quietly(self.ray.cancel, ref, force=True)
            if refs:
                _quietly(self.ray.wait, refs, num_returns=len(refs), timeout=STOP_SECONDS)
            _quietly(self.ray.kill, self.sink)
        if self._started:
            self.ray.shutdown()


def _check_fits(ray, cpus, gpus, threads, world):
    """A ValueError unless one node of the cluster has ``cpus`` CPUs and ``gpus`` GPUs (Ray
    would wait for such a node for ever)."""
    nodes = [node.get('Resources', {}) for node in ray.nodes() if node.get('Alive')]
    if any(n.get('CPU', 0) >= cpus and n.get('GPU', 0) >= gpus for n in nodes):
        return
    most = max((n.get('CPU', 0) for n in nodes), default=0)
    need = f'{cpus:g} CPUs' + (f' and {gpus:g} GPUs' if gpus else '')
    raise ValueError(f'a trial needs {need} on one node (--threads {threads}'
                     + (f' x --ddp {world}' if world > 1 else '') + (', --gpus-per-trial'
                                                                     if gpus else '')
                     + f'), but no node of the Ray cluster has them (the largest has {most:g} '
                     'CPUs): lower --threads or --ddp, or add larger nodes')


def _quietly(call, *args, **kwargs):
    """``call(*args, **kwargs)``, or None whatever it raises: a node or the sink may be gone
    already."""
    try:
        return call(*args, **kwargs)
    except Exception:
        return None


def _unwrapping(future):
    """A future whose exception is the task's own (a DataShapeError stays one), not Ray's."""
    out = concurrent.futures.Future()

    def done(f):
        error = f.exception()
        if error is None:
            out.set_result(f.result())
            return
        cause = getattr(error, 'cause', None)
        out.set_exception(cause if isinstance(cause, BaseException) else error)
    future.add_done_callback(done)
    return out
