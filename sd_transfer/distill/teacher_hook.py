"""The hook that keeps the student's teacher: the last snapshot of each cycle (SD), of each epoch
(PS-KD), or an exponential moving average of the student (a mean teacher)."""
import contextlib
import copy
from typing import Dict, Optional

from mmengine.dist import all_reduce_params, broadcast, get_world_size
from mmengine.hooks import Hook
from mmengine.model import ExponentialMovingAverage, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import weights_to_cpu

from .cycles import cycle_boundaries
from .inference_teacher import InferenceTeacher
from .model import SnapshotDistiller
from .teacher_eval import evaluate, log_teacher_metrics

REFRESH = ('cycle', 'epoch', 'ema')


@HOOKS.register_module()
class SnapshotTeacherHook(Hook):
    """Keep the teacher of a :class:`SnapshotDistiller`, refreshed as ``refresh`` says.

    - ``'cycle'`` (SD): the student is copied into the teacher at the first iteration of every
      cycle after the first. Cycle boundaries come from the config's ``CosineRestartLR``
      (:func:`cycle_boundaries`), never from a second list.
    - ``'epoch'`` (PS-KD): the same at the first iteration of every epoch after the first.
    - ``'ema'``: the teacher is an exponential moving average of the student (mmengine's
      ``ExponentialMovingAverage``: ``teacher = momentum·teacher + (1 - momentum)·student`` after
      every step, BN buffers copied), from the first iteration on; it teaches from cycle 2 on, as
      SD's snapshots do, so that the two differ only in snapshot vs average.

    A sibling of mmengine's ``EMAHook``: it owns a copy of the model outside DDP and the
    optimizer. Every rank keeps the same teacher (BN buffers stay per rank in DDP: rank 0's, or
    for the average their mean, are shared), and the teacher goes into every checkpoint
    (``sd_teacher``), so a resumed run keeps distilling from the same teacher.

    The student runs the teacher through an :class:`InferenceTeacher`: snapshots with BN folded
    into the convolutions, refreshed in place; the average as it is (refolding it every step
    would cost more than it saves); compiled as ``compile`` says (``'auto'``: when the run has
    enough teacher steps left to pay for it).

    Where a snapshot becomes the teacher (and for the average, at each cycle start) its val
    metrics are logged as ``teacher/<metric>`` scalars: the student's own val metrics when
    validation ran right there (same weights), else the teacher is evaluated on the val set.
    """

    priority = 'NORMAL'

    def __init__(self, refresh: str = 'cycle', momentum: float = 0.999, compile='auto'):
        if refresh not in REFRESH:
            raise ValueError(f'refresh must be one of {REFRESH}, got {refresh!r}')
        if not 0 < momentum < 1:
            raise ValueError(f'momentum must be in (0, 1), got {momentum}')
        self.refresh = refresh
        self.momentum = float(momentum)
        self.teacher = None  # the plain teacher (eval mode), as checkpoints keep it
        self.ema = None  # refresh='ema': the averaged model; its .module is the teacher
        self.runs = InferenceTeacher(fold=refresh != 'ema', compile=compile)  # what the student
        # calls
        self.number = 1  # the cycle (or epoch) the current teacher teaches
        self.last_val: Dict[str, float] = {}
        self.last_val_iter = None
        self.resumed = None  # the checkpoint's teacher, set up in before_train

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, SnapshotDistiller):
            raise TypeError('SnapshotTeacherHook needs model type SnapshotDistiller, got '
                            f'{type(model).__name__}')
        self.student = model
        model.refresh = dict(refresh=self.refresh)
        if self.refresh == 'ema':
            model.refresh['momentum'] = self.momentum

    def before_train(self, runner) -> None:
        epoch = len(runner.train_dataloader)
        if self.refresh == 'epoch':
            self.starts = list(range(epoch, runner.max_iters, epoch))
        else:
            self.starts = cycle_boundaries(runner)[1:-1]
        what = dict(cycle='cycles', epoch='epochs', ema='cycles, an average of the student')
        runner.logger.info(f'SD: teacher refreshed at the start of {what[self.refresh]} '
                           f'(iterations {self.starts})')
        if self.refresh == 'ema':
            # Built here, not when a checkpoint loads, so that it copies the student as it trains
            # (e.g. channels_last, set up in before_train by a higher-priority hook).
            with self._without_teacher():
                self.ema = ExponentialMovingAverage(self.student, momentum=1 - self.momentum)
            self.ema.module.eval()
            self.teacher = self.ema.module
        if self.resumed is not None:
            if self.ema is not None:
                self.ema.load_state_dict(self.resumed['state_dict'])
            else:
                self.teacher = self.teacher or self._new_teacher()
                self.teacher.load_state_dict(self.resumed['state_dict'])
            self.number = self.resumed['cycle']
            runner.logger.info(f'SD: resumed the teacher of {self.refresh} {self.number} from '
                               'the checkpoint')
            self.resumed = None
        if self.teacher is not None and (self.ema is None or runner.iter >= self._teaches_from):
            self._teach(runner)

    def _teach(self, runner) -> None:
        """The student distils from the current teacher weights from now on."""
        first = self.runs.model is None
        self.runs.update(self.teacher, steps=runner.max_iters - runner.iter, like=self.student)
        self.student.set_teacher(self.runs)
        if first:
            runner.logger.info(f'SD: the teacher runs {self.runs.describe()}')

    @property
    def _teaches_from(self) -> int:
        return self.starts[0] if self.starts else float('inf')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        loop = runner.train_loop
        self.student.progress = ((runner.epoch + 1) / loop.max_epochs if hasattr(
            loop, 'max_epochs') else (runner.iter + 1) / runner.max_iters)
        if runner.iter in self.starts:
            self._refresh(runner, self.starts.index(runner.iter) + 2)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.ema is None:
            return
        self.ema.update_parameters(self.student)  # after the optimizer step, as EMAHook
        if get_world_size() > 1:  # the buffers it copied are each rank's own BN statistics
            all_reduce_params([b for b in self.ema.module.buffers() if b.is_floating_point()],
                              op='mean')

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.last_val = dict(metrics or {})
        self.last_val_iter = runner.iter

    def _refresh(self, runner, number: int) -> None:
        self.number = number
        unit = 'epoch' if self.refresh == 'epoch' else 'cycle'
        if self.ema is None:
            # BN running statistics stay per rank in DDP (broadcast_buffers=False): rank 0's go
            # to every rank first, so all ranks distil from one teacher, the one a checkpoint saves.
            if get_world_size() > 1:
                for buffer in self.student.buffers():
                    broadcast(buffer, src=0)
            self.teacher = self.teacher or self._new_teacher()
            self.teacher.load_state_dict(self.student.state_dict())
            how = 'the student is now the teacher'
        else:
            how = f'the average of the student (momentum {self.momentum:g}) teaches'
        self._teach(runner)
        top1 = self.last_val.get('accuracy/top1') if self.last_val_iter == runner.iter else None
        runner.logger.info(
            f'SD: {unit} {number} starts at iteration {runner.iter}: {how} (student val top-1 '
            f'at this point: {"n/a" if top1 is None else f"{top1:.2f}"})')
        runner.visualizer.add_scalars({f'sd/teacher_{unit}': number}, step=runner.iter)
        self._log_teacher_metrics(runner, f'{unit} {number - 1}')

    def _log_teacher_metrics(self, runner, what: str) -> None:
        if runner.val_loop is None:
            return
        if self.ema is None and self.last_val and self.last_val_iter == runner.iter:
            metrics, how = self.last_val, f'{what} student, validated at its end'
        else:
            kind = 'average' if self.ema is not None else 'student'
            metrics, how = evaluate(self.teacher, runner), f'{what} {kind}, evaluated'
        log_teacher_metrics(runner, metrics, round(runner.iter / len(runner.train_dataloader), 3),
                            how)

    @contextlib.contextmanager
    def _without_teacher(self):
        """Do not deep-copy the student's current teacher into a new one."""
        current = self.student.teacher
        self.student.set_teacher(None)
        try:
            yield
        finally:
            self.student.set_teacher(current)

    def _new_teacher(self):
        with self._without_teacher():
            teacher = copy.deepcopy(self.student)
        return teacher.eval().requires_grad_(False)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.teacher is not None:
            state = (self.ema or self.teacher).state_dict()
            checkpoint['sd_teacher'] = dict(state_dict=weights_to_cpu(state), cycle=self.number,
                                            refresh=self.refresh)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume and checkpoint.get('sd_teacher') is not None:
            self.resumed = checkpoint['sd_teacher']
