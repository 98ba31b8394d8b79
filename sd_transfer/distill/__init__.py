"""Snapshot distillation: the student model, its loss, and the hook that refreshes its teacher."""
from .cycles import cycle_boundaries
from .loss import distill_loss
from .model import SnapshotDistiller
from .teacher_hook import SnapshotTeacherHook

__all__ = ['cycle_boundaries', 'distill_loss', 'SnapshotDistiller', 'SnapshotTeacherHook']
