"""Test-only hooks that record what SD does at every iteration, for the assertions in tests,
and a transform that records what each sample's pipeline drew."""
import json
import os
import os.path as osp
import random
import signal
import time

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, TRANSFORMS


def digest(module, params_only=False) -> float:
    """A number that changes when any parameter or buffer (BN statistics included) changes."""
    tensors = module.parameters() if params_only else module.state_dict().values()
    total = 0.0
    for i, t in enumerate(tensors):
        total += (i + 1) * t.detach().double().sum().item()
    return total


def runner_hook(runner, name):
    return next((h for h in runner.hooks if type(h).__name__ == name), None)


@HOOKS.register_module()
class SDProbeHook(Hook):
    priority = 'LOW'  # after SnapshotTeacherHook: sees the teacher of the current iteration

    def before_run(self, runner):
        self.student = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.rec = dict(lr=[], teacher_digest=[], teacher_forward_iters=[], kd_iters=[],
                        losses=[], teacher_changed_during_iter=[], teacher_requires_grad=[],
                        teacher_training=[], alpha=[], student_params=[], teacher_params=[],
                        draws=[])
        self.hooked = set()
        self.iter = None
        # Simulated pre-emption: SIGKILL this process at the start of the given iteration, or
        # as the final validation starts.
        self.kill_at = int(os.environ.get('SD_PROBE_KILL_AT_ITER', -1))
        self.kill_at_final_val = os.environ.get('SD_PROBE_KILL_AT_FINAL_VAL') == '1'
        # Simulated long epochs (ImageNet's take minutes): each lasts at least this long.
        self.min_epoch_seconds = float(os.environ.get('SD_PROBE_MIN_EPOCH_SECONDS', 0))

    def before_train(self, runner):
        self.rec['first_iter'] = runner.iter

    def before_train_epoch(self, runner):
        self.epoch_start = time.time()

    def after_train_epoch(self, runner):
        time.sleep(max(0.0, self.epoch_start + self.min_epoch_seconds - time.time()))

    def before_val_epoch(self, runner):
        if self.kill_at_final_val and runner.epoch == runner.max_epochs:
            os.kill(os.getpid(), signal.SIGKILL)

    def after_load_checkpoint(self, runner, checkpoint):
        # Simulated bad read on one node: that rank loads other weights than the others.
        if str(get_rank()) == os.environ.get('SD_PROBE_PERTURB_RANK'):
            state = checkpoint['state_dict']
            key = next(k for k, v in state.items() if v.is_floating_point())
            state[key] = state[key] + 1

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.iter = runner.iter
        draws = [[s.sample_idx, s.draws] for s in data_batch['data_samples']
                 if 'draws' in s.metainfo_keys()]
        if draws:
            self.rec['draws'].append(draws)
        self.rec['lr'].append(runner.optim_wrapper.get_lr()['lr'][0])
        teacher = getattr(self.student, 'teacher', None)
        if teacher is None:
            self.rec['teacher_digest'].append(None)
            return
        if id(teacher) not in self.hooked:
            self.hooked.add(id(teacher))
            teacher.register_forward_hook(
                lambda *_: self.rec['teacher_forward_iters'].append(self.iter))
        self.before = digest(teacher)
        self.rec['teacher_digest'].append(self.before)
        self.rec['teacher_requires_grad'].append(any(p.requires_grad for p in teacher.parameters()))
        self.rec['teacher_training'].append(any(m.training for m in teacher.modules()))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.rec['losses'].append({k: float(v) for k, v in outputs.items() if 'loss' in k})
        self.rec['alpha'].append(float(outputs['pskd_alpha']) if 'pskd_alpha' in outputs else None)
        if 'loss_kd' in outputs:
            self.rec['kd_iters'].append(runner.iter)
        teacher = getattr(self.student, 'teacher', None)
        if teacher is not None:
            self.rec['teacher_changed_during_iter'].append(digest(teacher) != self.before)
        # after the step (and, for an average teacher, its update: that hook runs before this)
        averaged = getattr(runner_hook(runner, 'SnapshotTeacherHook'), 'teacher', None)
        self.rec['student_params'].append(digest(self.student, params_only=True))
        self.rec['teacher_params'].append(
            None if averaged is None else digest(averaged, params_only=True))

    def after_train(self, runner):
        teacher = getattr(self.student, 'teacher', None)
        optimized = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
        self.rec['teacher_params_in_optimizer'] = 0 if teacher is None else sum(
            id(p) in optimized for p in teacher.parameters())
        self.rec['student_param_digest'] = digest(self.student, params_only=True)
        self.rec['iters'] = runner.iter
        with open(osp.join(runner.work_dir, f'probe_rank{get_rank()}.json'), 'w') as f:
            json.dump(self.rec, f)


@TRANSFORMS.register_module()
class RandomDrawsProbe(BaseTransform):
    """Last in a pipeline: the next number of numpy, ``random`` and torch go into the sample's
    metainfo (``draws``), so a test sees the random streams each sample's augmentation drew from
    (the SDProbeHook records them per iteration with the sample's index)."""

    def transform(self, results: dict) -> dict:
        draws = [np.random.rand(), random.random(), torch.rand(1).item()]
        results['data_samples'].set_metainfo(dict(draws=draws))
        return results


def draws_by_epoch(records, iters_per_epoch: int) -> dict:
    """``{epoch: {dataset index: draws}}`` from the SDProbeHook records of one run (one record
    per rank)."""
    epochs = {}
    for rec in records:
        for i, batch in enumerate(rec['draws'], rec['first_iter']):
            epochs.setdefault(i // iters_per_epoch, {}).update(
                {index: draws for index, draws in batch})
    return epochs


@HOOKS.register_module()
class NaNInjectionHook(Hook):
    """Simulated divergence: poison one weight with NaN at ``SD_PROBE_NAN_AT_ITER``, on the rank
    ``SD_PROBE_NAN_RANK`` only if set (an fp16 overflow on one GPU)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        rank = os.environ.get('SD_PROBE_NAN_RANK')
        if rank is not None and str(get_rank()) != rank:
            return
        if runner.iter == int(os.environ.get('SD_PROBE_NAN_AT_ITER', -1)):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            with torch.no_grad():
                next(model.parameters()).fill_(float('nan'))


@HOOKS.register_module()
class InitDigestHook(Hook):
    """Record a digest of the weights as training starts (after init, before iteration 1)."""

    priority = 'LOWEST'

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # conv kernels whose two layouts differ (a 1x1 kernel is contiguous in both)
        layouts = {p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters()
                   if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1}
        with open(osp.join(runner.work_dir, f'init_rank{get_rank()}.json'), 'w') as f:
            json.dump(dict(digest=digest(model), channels_last=sorted(layouts)), f)


def tiny_distiller(**kwargs):
    """A ResNet-18 SnapshotDistiller with a 5-class head (``kwargs``: its SD settings), built as
    a Runner builds it, in mmpretrain's scope: sub-module types are looked up in the current
    default scope, which an earlier test in the process may have left at mmdet's."""
    from mmengine.registry import DefaultScope
    from sd_transfer.distill import SnapshotDistiller
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return SnapshotDistiller(
            backbone=dict(type='ResNet', depth=18), neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=5, in_channels=512), **kwargs)


def random_classifier(arch, depth=50, num_classes=None, seed=0):
    """An mmpretrain classifier (a linear head of ``num_classes`` when given) with random
    weights and BN statistics, in eval mode: exports that drop or misname a buffer then show."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    head = num_classes and dict(type='LinearClsHead', num_classes=num_classes,
                                in_channels=2048 if depth >= 50 else 512)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = ImageClassifier(backbone=dict(type=arch, depth=depth, out_indices=(0, 1, 2, 3)),
                                neck=head and dict(type='GlobalAveragePooling'), head=head)
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_()
    return model.eval()
