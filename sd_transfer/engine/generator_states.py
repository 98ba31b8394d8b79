"""Checkpoints carry every rank's random generators, so that a resume continues their streams.

mmengine's checkpoints hold no generator states and its resume re-seeds (``Runner.resume`` calls
``set_randomness`` with the checkpoint's seed): what the main process draws after a resume would
restart from the seed, e.g. mmdet's RPN and RoI samplers (``torch.randperm``) and the dropout of
mmseg's heads. So each rank's torch (CPU, and CUDA where there is one), numpy and ``random``
states are gathered after every training iteration (mmengine saves checkpoints on rank 0 only,
right after, so that is the last point where all ranks meet) and saved in rank 0's checkpoint;
on resume each rank restores its own in ``before_train``, the first hook point after
``Runner.resume`` (``Runner.train`` resumes in ``load_or_resume`` just before the train loop
starts, and ``load_checkpoint`` calls ``after_load_checkpoint`` before ``resume`` re-seeds).

A DataLoader draws its workers' base seed from torch's global generator whenever it creates an
iterator: every epoch without persistent workers, once more after a resume with them, so the
count depends on the loader settings. mmengine's ``worker_init_fn`` re-seeds every worker
anyway, so the train and val loaders get generators of their own and draw nothing from the
training's stream.
"""
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def current_states() -> dict:
    """This process's generator states, as plain data (tensors, tuples, numbers)."""
    states = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(),
                  random=random.getstate())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def restore_states(states: dict) -> None:
    """Inverse of :func:`current_states` (numpy's key comes back as a list from a checkpoint)."""
    torch.set_rng_state(states['torch'].cpu())  # resume maps the checkpoint onto the device
    name, key, pos, has_gauss, gauss = states['numpy']
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(states['random'])
    if 'cuda' in states:
        torch.cuda.set_rng_state(states['cuda'].cpu())


@HOOKS.register_module()
class GeneratorStatesHook(Hook):
    """Save every rank's generator states in checkpoints; restore this rank's on resume."""

    # after the hooks that set up training in before_train (NORMAL and above), and capturing in
    # after_train_iter before CheckpointHook (VERY_LOW) and StopAtSignalHook (LOWEST) save
    priority = 'LOW'

    def __init__(self):
        self.states = None  # every rank's, as of the last training iteration
        self.resumed = None  # this rank's from the checkpoint, restored in before_train

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return
        saved = checkpoint.get('generator_states')
        if saved is not None and len(saved) == runner.world_size and (
                saved[get_rank()].keys() == current_states().keys()):
            self.resumed = saved[get_rank()]
            return
        if saved is None:
            why = 'holds no random generator states (saved before checkpoints had them)'
        else:
            why = (f'holds the random generator states of {len(saved)} process(es) '
                   f'({", ".join(saved[0])}), this run has {runner.world_size} '
                   f'({", ".join(current_states())})')
        runner.logger.warning(f'--resume: {runner._load_from} {why}: the run continues with '
                              're-seeded generators, not exactly as an uninterrupted run would')

    def before_train(self, runner) -> None:
        for loop in (runner.train_loop, runner.val_loop):
            if loop is not None and loop.dataloader.generator is None:
                loop.dataloader.generator = torch.Generator()
        if self.resumed is not None:
            restore_states(self.resumed)
            self.resumed = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.states = all_gather_object(current_states())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.states is not None:
            checkpoint['generator_states'] = self.states
