"""A resume that continues the same run on every rank, or is refused before anything changes.

mmengine restores the optimizer's lr and the schedulers' state (their periods in the old run's
iterations) while the train loop recomputes its length from the new dataloader: resumed with
another total batch, a run silently trains another schedule. And each rank picks its checkpoint
on its own before the process group exists, so a read error on one node would make that rank
resume from an older file, with no error (mmengine never re-broadcasts the weights after a
resume).
"""
import hashlib

import torch
from mmengine.dist import all_gather_object, broadcast_object_list, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..errors import CollectiveError, UserError
from .run_info import per_process_batch


def run_shape(runner) -> dict:
    """What a resumed run must share with the run it continues, or its schedule changes."""
    batch = per_process_batch(runner)
    return dict(world_size=runner.world_size, batch_per_process=batch,
                total_batch=runner.world_size * batch, epoch_length=len(runner.train_dataloader))


def state_digest(model) -> str:
    """sha256 of every parameter and buffer, byte by byte."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return digest.hexdigest()


@HOOKS.register_module()
class ResumeHook(Hook):
    """Every checkpoint records the run's shape; a resume of another shape is refused; rank 0
    chooses the checkpoint all ranks resume from; after resuming, the ranks check that they hold
    the same iteration and weights."""

    priority = 'VERY_HIGH'  # the first to see a loaded checkpoint: refuse before others use it

    def before_run(self, runner) -> None:
        if get_world_size() > 1:  # rank 0's choice, whether to resume and from which file, for all
            chosen = [(runner._resume, runner._load_from)]
            broadcast_object_list(chosen, src=0)
            if chosen[0] != (runner._resume, runner._load_from):
                runner.logger.warning(f'rank {get_rank()}: resuming as rank 0 chose '
                                      f'({chosen[0][1]}), not from {runner._load_from}')
            runner._resume, runner._load_from = chosen[0]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['run_shape'] = run_shape(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('run_shape')
        if not runner._resume or saved is None:
            return
        now = run_shape(runner)
        keys = ('total_batch', 'world_size', 'epoch_length')
        if [saved.get(k) for k in keys] != [now[k] for k in keys]:
            raise UserError(
                f'--resume: the checkpoint was trained with {_shape(saved)}; this run has '
                f'{_shape(now)}: its schedule (lr, cycle lengths, epochs in iterations) would '
                f"not fit; resume with {saved['world_size']} process(es) and the same batch "
                'and data')

    def before_train(self, runner) -> None:
        if not runner._resume or get_world_size() == 1:  # the same on every rank (before_run)
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        mine = (runner.iter, state_digest(model))
        states = all_gather_object(mine)
        differ = [rank for rank, state in enumerate(states) if state != states[0]]
        if differ:
            raise CollectiveError(
                f'--resume: ranks {", ".join(map(str, differ))} hold another iteration or other '
                f'weights than rank 0 after loading {runner._load_from} (iterations '
                f'{[s[0] for s in states]}); is the work dir the same file system on every node?')


def _shape(shape: dict) -> str:
    return (f"a total batch of {shape['total_batch']} ({shape['world_size']} process(es) x "
            f"{shape['batch_per_process']}) and {shape['epoch_length']} iterations per epoch")
