"""A fixed teacher read from a file: born-again generations and distillation from a bigger model.

The teacher is an mmpretrain classifier built from its own config (the student's, as resolved
after ``--cfg-options``, unless told otherwise, e.g. ResNet-101 teaching ResNet-50), its weights read with ``weights_only=True`` and
checked key by key against that model, as transfer backbones are. It teaches every iteration,
is never trained, and is not saved again in every checkpoint: its path and sha256 are, and a
resumed run refuses a teacher file whose content changed. Its val metrics are logged once, as
training starts.
"""
import copy
import inspect
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from ..errors import UserError
from ..io import file_sha256, safe_torch_load
from .inference_teacher import InferenceTeacher
from .model import SnapshotDistiller
from .teacher_eval import evaluate, log_teacher_metrics


# SnapshotDistiller's own arguments, which an ImageClassifier does not take
DISTILLER_ONLY = tuple(set(inspect.signature(SnapshotDistiller).parameters)
                       - set(inspect.signature(ImageClassifier).parameters))


def classifier_state_dict(path: str) -> dict:
    """The classifier weights of an mmengine/mmpretrain checkpoint (``state_dict`` or bare)."""
    try:
        obj = safe_torch_load(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(f'--teacher: {e}') from e
    state = obj.get('state_dict', obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f'--teacher: {path}: not a classifier checkpoint (expected a state dict '
                        "of tensors, or a dict with one under 'state_dict')")
    return state


def teacher_model(cfg: Config) -> torch.nn.Module:
    """The classifier of ``cfg`` (a resolved config) as a teacher: no distillation loss, no
    initialisation from files, frozen, in eval mode; weights still to be loaded."""
    model_cfg = copy.deepcopy(cfg.model)
    # mmpretrain recipes set the normalisation at top level; the Runner merges it in, so do we
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model_cfg.pop('init_cfg', None)
    if model_cfg.get('backbone'):
        model_cfg.backbone.pop('init_cfg', None)
    if model_cfg.get('type') == 'SnapshotDistiller':  # a teacher needs no distillation loss
        model_cfg.type = 'ImageClassifier'
        for key in DISTILLER_ONLY:
            model_cfg.pop(key, None)
    return MODELS.build(model_cfg).eval().requires_grad_(False)


def check_fixed_teacher_config(cfg: Config, config: str) -> None:
    """A fixed teacher needs a distillation model without a teacher of its own."""
    if cfg.model.get('type') != 'SnapshotDistiller':
        raise UserError(f'--teacher needs a distillation config (model type SnapshotDistiller), '
                        f"not {cfg.model.get('type')} ({config})")
    if any(h.get('type') == 'SnapshotTeacherHook' for h in cfg.get('custom_hooks') or []):
        raise UserError(f'--teacher: {config} has its own teacher (SnapshotTeacherHook); '
                        'a fixed teacher needs a config without it (e.g. *_ban_*)')


def build_teacher(path: str, cfg: Config) -> torch.nn.Module:
    """The classifier of ``cfg`` with the weights of ``path``, verified, frozen, in eval mode."""
    from ..transfer.backbone import check_state_dict
    teacher = teacher_model(cfg)
    state = classifier_state_dict(path)
    check_state_dict(state, teacher, path, f'the teacher model of {cfg.filename}')
    teacher.load_state_dict(state)
    return teacher


def load_teacher_config(config: str) -> Config:
    if not osp.isfile(config):
        raise UserError(f'--teacher-config: {config}: config file not found')
    return Config.fromfile(config)


@HOOKS.register_module()
class FileTeacherHook(Hook):
    """Set the teacher read from ``checkpoint`` (the model of the resolved config ``cfg``) for
    the whole run."""

    priority = 'NORMAL'

    def __init__(self, checkpoint: str, cfg: Config, compile='auto'):
        self.runs = InferenceTeacher(compile=compile)  # what the student calls
        self.checkpoint = osp.abspath(checkpoint)
        self.config = osp.abspath(cfg.filename)
        self.sha256 = file_sha256(self.checkpoint)
        self.teacher = build_teacher(self.checkpoint, cfg)

    def record(self) -> dict:
        return dict(path=self.checkpoint, sha256=self.sha256, config=self.config)

    def before_run(self, runner) -> None:
        self.student = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.teacher.to(next(self.student.parameters()).device)
        runner.message_hub.update_info('file_teacher', self.record())

    def before_train(self, runner) -> None:
        # after ChannelsLastHook (VERY_HIGH): the folded copy takes the student's layout
        self.runs.update(self.teacher, steps=runner.max_iters - runner.iter, like=self.student)
        self.student.set_teacher(self.runs)
        runner.logger.info(f'teacher from {self.checkpoint} (sha256 {self.sha256[:8]}, model of '
                           f'{self.config}): teaches every iteration, never trained; runs '
                           f'{self.runs.describe()}')
        if runner.val_loop is not None and runner.iter == 0:
            log_teacher_metrics(runner, evaluate(self.teacher, runner), 0, 'from file, evaluated')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['file_teacher'] = self.record()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('file_teacher')
        if runner._resume and saved and saved.get('sha256') != self.sha256:
            raise UserError(f'--teacher {self.checkpoint} (sha256 {self.sha256[:8]}) is not the '
                            f"teacher this run started with: {saved.get('path')} (sha256 "
                            f"{str(saved.get('sha256'))[:8]})")
