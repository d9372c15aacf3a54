"""One trial on several processes (``--ddp N``): data parallelism with torch.distributed.

Every rank holds the same model (same seed, parameters broadcast from rank 0) and iterates the
same training generator in the same seeded order. :class:`DataParallel` then hooks into
:class:`base_model.BaseModel`'s own loop (``model.parallel``):

* training: each global batch of ``batch_size`` rows is cut into N contiguous shares, one per
  rank; rank r backpropagates its mean loss weighted by its share of the rows, and the gradients
  are summed over the ranks (all-reduce) before clipping and the optimizer step. That is exactly
  the gradient of the whole batch's mean loss, so N processes train as one process with the same
  batch does (to float rounding), whatever N and however unevenly the last batch divides. A rank
  whose share is empty still takes part in the step. Constraints run on every rank after the
  identical step, so the replicas stay identical; BatchNorm normalises each rank's share (as in
  torch's DistributedDataParallel) and dropout draws per rank, so such models match one process
  in distribution, not bit for bit.
* evaluation, test and prediction: the batches are dealt out in turn (batch i to rank i mod N),
  then the outputs are gathered and put back in batch order, so every sample is computed once
  and comes back once, in its original order, on every rank.
* checkpoints and files: rank 0 writes; the others work in a scratch directory.

The process group is NCCL on CUDA (one GPU per rank) and gloo on the CPU; :func:`launch` starts
the N processes (from the preloaded forkserver, so they start in milliseconds).
"""
import os
import queue as queue_module
import shutil
import signal
import tempfile
import traceback

import torch
import torch.distributed as dist

from dlutil.data.batches import rows, to_numpy
from dlutil.processes import die_with_parent, worker_context


def _take_rows(tree, start, stop):
    if isinstance(tree, dict):
        return {key: _take_rows(value, start, stop) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, 'shape'):
        return type(tree)(_take_rows(value, start, stop) for value in tree)
    return tree[start:stop]


def share(n, rank, world):
    """Rows ``[start, stop)`` of rank ``rank`` in a batch of ``n`` rows (the first ``n % world``
    ranks take one more)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def merge(gathered):
    """Items from every rank, ``[[(batch index, item), ...] per rank]``, in batch order (ranks in
    order within a batch)."""
    keyed = [(index, rank, item) for rank, part in enumerate(gathered) for index, item in part]
    return [item for _, _, item in sorted(keyed, key=lambda k: (k[0], k[1]))]


class DataParallel:
    """The hooks ``BaseModel`` calls when ``model.parallel`` is set (see the module docstring).

    Parameters
    ----------
    model: base_model.BaseModel
        Its network is made identical to rank 0's.
    """

    def __init__(self, model):
        if not dist.is_initialized():
            raise RuntimeError('DataParallel needs torch.distributed initialised (see launch)')
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.model, self.weight = model, 1.0
        self._ids = []
        model.parallel = self
        with torch.no_grad():
            for tensor in list(model.network.parameters()) + list(model.network.buffers()):
                dist.broadcast(tensor.data, src=0)

    # -- training -----------------------------------------------------------------------------
    def shard(self, generator):
        """This rank's share of every batch of ``generator``; sets :attr:`weight` for the step."""
        self._ids = []
        for index, batch in enumerate(generator):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            n = rows(x)
            start, stop = share(n, self.rank, self.world)
            if stop == start:
                self.idle_step()
                continue
            self.weight = (stop - start) / n
            self._ids.append(index)
            yield _take_rows(batch, start, stop)

    def weighted(self, loss):
        """The loss this rank backpropagates: its mean loss times its share of the batch."""
        return loss * self.weight

    def all_reduce_gradients(self):
        """Sum the gradients over the ranks (a missing gradient counts as zeros)."""
        grads = []
        for parameter in self.model.network.parameters():
            if parameter.requires_grad:
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
                grads.append(parameter.grad)
        by_dtype = {}
        for grad in grads:
            by_dtype.setdefault(grad.dtype, []).append(grad)
        for group in by_dtype.values():  # one all-reduce per dtype, not per tensor
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat)
            for grad, part in zip(group, flat.split([g.numel() for g in group])):
                grad.copy_(part.view_as(grad))

    def idle_step(self):
        """The optimizer step of a rank whose share of a (short) batch is empty."""
        self.model.optimizer.zero_grad(set_to_none=True)
        self.model.apply_gradients()  # all-reduces the others' gradients, then steps

    def gather_epoch(self, loss_sum, n, kept_true, kept_pred):
        """The epoch's summed loss and row count over all ranks, and the kept outputs of every
        rank in the order one process would have kept them."""
        totals = torch.stack([loss_sum.double(), torch.tensor(float(n), dtype=torch.float64,
                                                               device=loss_sum.device)])
        dist.all_reduce(totals)
        ids = self._ids[:len(kept_true)]
        parts = self._all_gather(list(zip(ids, zip(kept_true, map(to_numpy, kept_pred)))))
        pairs = merge(parts)
        return totals[0], int(round(float(totals[1]))), [t for t, _ in pairs], [p for _, p in pairs]

    # -- evaluation and prediction ------------------------------------------------------------
    def deal(self, batches):
        """Batches ``rank``, ``rank + N``, … of ``batches``."""
        self._ids = []
        for index, batch in enumerate(batches):
            if index % self.world == self.rank:
                self._ids.append(index)
                yield batch

    def gather(self, trues, preds, loss_sum, n):
        """Every rank's labels, outputs (numpy), summed loss and rows, in batch order."""
        labelled = len(trues) == len(preds)
        items = [(t if labelled else None, p) for t, p in zip(trues if labelled else preds, preds)]
        parts = self._all_gather((list(zip(self._ids, items)), float(loss_sum), int(n)))
        pairs = merge([part[0] for part in parts])
        trues = [t for t, _ in pairs] if labelled and pairs else []
        return (trues, [p for _, p in pairs], sum(part[1] for part in parts),
                sum(part[2] for part in parts))

    def _all_gather(self, obj):
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def backend_for(device):
    return 'nccl' if torch.device(device).type == 'cuda' else 'gloo'


_REPORT = []  # in a rank's process: (queue, rank) for report()


def report(value):
    """Hand ``value`` to the ``on_report`` of the :func:`launch` that started this rank (in the
    launching process, in the order reported); rank 0 uses it to pass each epoch's files on."""
    queue, rank = _REPORT[0]
    queue.put((rank, 'report', value))


def _entry(rank, world, init_file, devices, target, args, queue):
    # a forkserver's child: its parent is the server, which exits with the launching process
    die_with_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the launching process stops us
    _REPORT[:] = [(queue, rank)]
    device = torch.device(devices[rank % len(devices)])
    try:
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist.init_process_group(backend_for(device), init_method=f'file://{init_file}',
                                rank=rank, world_size=world)
        result = target(rank, world, device, *args)
        queue.put((rank, 'ok', result if rank == 0 else None))
    except BaseException as error:  # reported before the group goes: the others fail after
        queue.put((rank, 'error', f'{type(error).__name__}: {error}\n{traceback.format_exc()}'))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(world, target, args=(), devices=('cpu',), cancel=None, on_report=None):
    """Run ``target(rank, world, device, *args)`` in ``world`` processes of one process group.

    Parameters
    ----------
    world: int
        Number of processes (ranks).
    target: callable
        A module-level function (it is pickled by name).
    devices: sequence of str
        Rank r uses ``devices[r % len(devices)]``: one GPU per rank on CUDA, the CPU otherwise.
    cancel: threading.Event or None
        Once set, the ranks are stopped and this raises KeyboardInterrupt.
    on_report: callable or None
        ``on_report(value)`` for each :func:`report` of a rank, called here as it arrives.

    Returns
    -------
    What rank 0's ``target`` returned. A rank's error stops the others and is raised here as a
    RuntimeError with that rank's traceback.
    """
    context = worker_context()
    folder = tempfile.mkdtemp(prefix='dlutil-ddp-')
    queue = context.Queue()
    processes = [context.Process(target=_entry, daemon=False,
                                 args=(rank, world, os.path.join(folder, 'init'), list(devices),
                                       target, args, queue))
                 for rank in range(world)]
    try:
        for process in processes:
            process.start()
        result, reported = None, 0
        while reported < world:
            try:
                rank, status, value = queue.get(timeout=1.0)
            except queue_module.Empty:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt('--ddp group cancelled') from None
                dead = [r for r, p in enumerate(processes) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f'--ddp rank {dead[0]} died (exit code '
                                       f'{processes[dead[0]].exitcode})') from None
                continue
            if status == 'error':
                raise RuntimeError(f'--ddp rank {rank} failed: {value}')
            if status == 'report':
                if on_report is not None:
                    on_report(value)
                continue
            reported += 1
            if rank == 0:
                result = value
        for process in processes:
            process.join()
        return result
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        shutil.rmtree(folder, ignore_errors=True)
