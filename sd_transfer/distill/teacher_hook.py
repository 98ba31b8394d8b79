"""The hook that makes the last snapshot of each cycle the frozen teacher of the next."""
import copy
from typing import Dict, Optional

from mmengine.dist import broadcast, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import weights_to_cpu

from .cycles import cycle_boundaries
from .model import SnapshotDistiller
from .teacher_eval import evaluate, log_teacher_metrics


@HOOKS.register_module()
class SnapshotTeacherHook(Hook):
    """Copy the student into the teacher at the first iteration of every cycle after the first.

    A sibling of mmengine's ``EMAHook``: it owns a copy of the model outside DDP and the
    optimizer, but refreshes it once per cycle instead of every step. Cycle boundaries come from
    the config's ``CosineRestartLR`` (:func:`cycle_boundaries`), never from a second list. The
    teacher goes into every checkpoint (``sd_teacher``), so a resumed run keeps distilling from the
    same teacher instead of a fresh snapshot of the student.

    At each swap the teacher's val metrics are logged as ``teacher/<metric>`` scalars at the
    snapshot's epoch: the student's own val metrics when validation ran right at the end of the
    cycle (same weights), else the teacher is evaluated on the val set.
    """

    priority = 'NORMAL'

    def __init__(self):
        self.teacher = None
        self.cycle = 1  # the cycle the current teacher teaches
        self.last_val: Dict[str, float] = {}
        self.last_val_iter = None
        self.resumed = None  # the checkpoint's teacher, set up in before_train

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, SnapshotDistiller):
            raise TypeError('SnapshotTeacherHook needs model type SnapshotDistiller, got '
                            f'{type(model).__name__}')
        self.student = model

    def before_train(self, runner) -> None:
        self.boundaries = cycle_boundaries(runner)
        self.starts = self.boundaries[1:-1]
        runner.logger.info(f'SD: {len(self.boundaries) - 1} cycles, teacher refreshed at '
                           f'iterations {self.starts}')
        if self.resumed is not None:
            # Built here, not when the checkpoint loads, so that it copies the student as it
            # trains (e.g. channels_last, set up in before_train by a higher-priority hook).
            if self.teacher is None:
                self.teacher = self._new_teacher()
            self.teacher.load_state_dict(self.resumed['state_dict'])
            self.cycle = self.resumed['cycle']
            self.student.set_teacher(self.teacher)
            self.resumed = None
            runner.logger.info(f'SD: resumed the teacher of cycle {self.cycle} from the checkpoint')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter in self.starts:
            self._snapshot(runner, cycle=self.starts.index(runner.iter) + 2)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.last_val = dict(metrics or {})
        self.last_val_iter = runner.iter

    def _snapshot(self, runner, cycle: int) -> None:
        # BN running statistics stay per rank in DDP (broadcast_buffers=False): rank 0's go to
        # every rank first, so all ranks distil from one teacher, the one a checkpoint saves.
        if get_world_size() > 1:
            for buffer in self.student.buffers():
                broadcast(buffer, src=0)
        if self.teacher is None:
            self.teacher = self._new_teacher()
        self.teacher.load_state_dict(self.student.state_dict())
        self.cycle = cycle
        self.student.set_teacher(self.teacher)
        top1 = self.last_val.get('accuracy/top1')
        runner.logger.info(
            f'SD: cycle {cycle} starts at iteration {runner.iter}: the student is now the teacher '
            f'(student val top-1 at this point: {"n/a" if top1 is None else f"{top1:.2f}"})')
        runner.visualizer.add_scalars({'sd/teacher_cycle': cycle}, step=runner.iter)
        self._log_teacher_metrics(runner, cycle)

    def _log_teacher_metrics(self, runner, cycle: int) -> None:
        if runner.val_loop is None:
            return
        if self.last_val and self.last_val_iter == runner.iter:
            metrics, how = self.last_val, f'cycle {cycle - 1} student, validated at its end'
        else:
            metrics, how = evaluate(self.teacher, runner), f'cycle {cycle - 1} student, evaluated'
        log_teacher_metrics(runner, metrics, round(runner.iter / len(runner.train_dataloader), 3),
                            how)

    def _new_teacher(self):
        current = self.student.teacher
        self.student.set_teacher(None)  # do not deep-copy an old teacher into the new one
        teacher = copy.deepcopy(self.student)
        self.student.set_teacher(current)
        teacher.eval()
        teacher.requires_grad_(False)
        return teacher

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.teacher is not None:
            checkpoint['sd_teacher'] = dict(
                state_dict=weights_to_cpu(self.teacher.state_dict()), cycle=self.cycle)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume and checkpoint.get('sd_teacher') is not None:
            self.resumed = checkpoint['sd_teacher']
