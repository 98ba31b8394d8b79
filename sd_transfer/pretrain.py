"""Pretraining as the tools run it: config and options, input checks, teacher, Runner."""
from typing import Optional

from mmengine.dist import barrier
from mmengine.runner import Runner

from .cli import load_config, start_run
from .datasets.checks import check_classification_data
from .distill.file_teacher import (FileTeacherHook, check_fixed_teacher_config,
                                   load_teacher_config)
from .errors import UserError


def add_teacher_args(parser) -> None:
    parser.add_argument('--teacher', metavar='CKPT',
                        help='distil from this fixed classifier checkpoint for the whole run '
                        '(ours or mmpretrain\'s model zoo); needs a SnapshotDistiller config '
                        'without SnapshotTeacherHook')
    parser.add_argument('--teacher-config', metavar='CONFIG',
                        help="the teacher's model config (default: the student's config)")


def pretrain(args, cfg_updates: Optional[dict] = None) -> Optional[Runner]:
    """Check everything, then train; ``cfg_updates`` are set on the config (born-again's
    generation number). Returns the Runner after training (None: resumed a finished run)."""
    cfg = load_config(args)
    if cfg_updates:
        cfg.merge_from_dict(cfg_updates)
    check_classification_data(cfg)
    teacher = None
    if args.teacher:
        check_fixed_teacher_config(cfg, args.config)
        teacher_cfg = load_teacher_config(args.teacher_config) if args.teacher_config else cfg
        teacher = FileTeacherHook(args.teacher, teacher_cfg)
    elif args.teacher_config:
        raise UserError('--teacher-config without --teacher')
    if not start_run(cfg, args, 'pretrain', teacher=teacher.record() if teacher else None):
        return None
    runner = Runner.from_cfg(cfg)
    if teacher is not None:
        runner.register_hook(teacher)
    runner.train()
    barrier()  # rank 0 writes the final backbone after the others are done: born-again reads it
    return runner
