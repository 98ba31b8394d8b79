"""The SD student: an mmpretrain ``ImageClassifier`` whose loss adds a distillation term."""
from typing import List, Optional

import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .loss import distill_loss, soft_target_ce


# The fixed loss forms, as (ce_weight, kd_weight, kd_scale_t2) from T and alpha.
KD_FORMS = {
    # our default, the values of a public SD reimplementation: CE·(1 + 1/T) + KL
    'sd': lambda t, alpha: (1.0 + 1.0 / t, 1.0, False),
    # Hinton et al.: (1-a)·CE + a·T²·KL; T² keeps the KL gradient comparable across T
    'hinton': lambda t, alpha: (1.0 - alpha, alpha, True),
}
# PS-KD (Kim et al., ICCV 2021): CE against (1 - a_t)·y + a_t·softmax(teacher / T), a_t rising
# linearly with training progress to alpha (0.8 in the paper; there T = 1): its weights change
# every epoch.
PSKD = 'pskd'


@MODELS.register_module()
class SnapshotDistiller(ImageClassifier):
    """``ImageClassifier`` trained with ``ce_weight * CE + kd_weight * KL(teacher || student)``.

    Every ``ImageClassifier`` config works after changing its ``type``: backbone, neck, head,
    data preprocessor, ``predict`` and ``extract_feat`` are unchanged, so mmpretrain's evaluator
    and pipelines see an ordinary classifier. The CE part is the head's own loss, so label
    smoothing or mixup targets configured upstream keep working.

    The teacher is set by :class:`SnapshotTeacherHook` (or, fixed, by ``FileTeacherHook``). It
    is held in a tuple so that it is *not* a registered submodule: it stays out of
    ``state_dict()``, ``parameters()`` (so out of the optimizer), DDP's gradient sync and
    ``model.train()``. Until it is set (the first cycle) the loss is plain, unweighted CE and no
    teacher forward runs, so cycle 1 is the cyclic baseline. With ``kd_weight=0`` (the control
    arm) the teacher is swapped as usual but never run: the loss is the weighted CE alone.

    Args:
        temperature: softening temperature T of both distributions.
        kd_form: ``'sd'`` (``CE·(1 + 1/T) + KL``), ``'hinton'`` (``(1-a)·CE + a·T²·KL``): it sets
            the three weights below unless they are given; or ``'pskd'``: CE against
            ``(1 - a_t)·y + a_t·softmax(teacher / T)`` with ``a_t = a · progress``, the progress
            of training (``(epoch + 1) / max_epochs``, set by the teacher hook), logged per step
            as ``pskd_alpha``.
        alpha: the ``a`` of the Hinton and PS-KD forms.
        ce_weight: weight of the CE term once a teacher exists.
        kd_weight: weight of the KL term.
        kd_scale_t2: multiply the KL term by T**2.
    """

    def __init__(self, *args, temperature: float = 3.0, kd_form: str = 'sd', alpha: float = 0.9,
                 ce_weight: Optional[float] = None, kd_weight: Optional[float] = None,
                 kd_scale_t2: Optional[bool] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if kd_form not in (*KD_FORMS, PSKD):
            raise ValueError(f"kd_form must be one of {sorted([*KD_FORMS, PSKD])}, got "
                             f'{kd_form!r}')
        if not hasattr(self.head, '_get_loss'):
            raise TypeError(f'{type(self.head).__name__} is not an mmpretrain ClsHead; '
                            'SnapshotDistiller needs its logits and its loss')
        self.temperature = float(temperature)
        self.kd_form = kd_form
        self.alpha = float(alpha)
        if kd_form == PSKD:
            if not (ce_weight is None and kd_weight is None and kd_scale_t2 is None):
                raise ValueError("kd_form='pskd' sets its weights from alpha and the progress")
            self.ce_weight = self.kd_weight = None
            self.kd_scale_t2 = False
        else:
            preset = KD_FORMS[kd_form](self.temperature, self.alpha)
            self.ce_weight = float(preset[0] if ce_weight is None else ce_weight)
            self.kd_weight = float(preset[1] if kd_weight is None else kd_weight)
            self.kd_scale_t2 = bool(preset[2] if kd_scale_t2 is None else kd_scale_t2)
        self.progress = 0.0  # of training, in (0, 1]: set by the teacher hook every iteration
        self.refresh = None  # how the teacher hook refreshes the teacher (for the meta)
        self.taught_last_step = False  # whether the last loss() ran the teacher (cost counting)
        self._teacher = ()

    @property
    def teacher(self) -> Optional[torch.nn.Module]:
        return self._teacher[0] if self._teacher else None

    def set_teacher(self, teacher: Optional[torch.nn.Module]) -> None:
        self._teacher = (teacher, ) if teacher is not None else ()

    def sd_settings(self) -> dict:
        settings = dict(temperature=self.temperature, kd_form=self.kd_form,
                        ce_weight=self.ce_weight, kd_weight=self.kd_weight,
                        kd_scale_t2=self.kd_scale_t2)
        if self.kd_form == PSKD:  # its weights follow from alpha
            settings['alpha'] = self.alpha
        return dict(settings, **(self.refresh or {}))

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        logits = self.head(self.extract_feat(inputs))
        losses = self.head._get_loss(logits, data_samples)
        ce = losses.pop('loss')
        teacher = self.teacher
        self.taught_last_step = False
        if teacher is None:  # cycle 1: plain CE, exactly the cyclic baseline
            losses['loss_ce'] = ce
            return losses
        ce_weight, kd_weight = self.ce_weight, self.kd_weight
        if self.kd_form == PSKD:
            kd_weight = self.alpha * self.progress
            ce_weight = 1.0 - kd_weight
            losses['pskd_alpha'] = logits.new_tensor(kd_weight)  # logged, not a loss term
        self.taught_last_step = kd_weight != 0
        losses['loss_ce'] = ce_weight * ce
        if kd_weight == 0:  # the control arm: reweighted CE, no teacher forward
            return losses
        with torch.inference_mode():
            teacher_logits = teacher(inputs, mode='tensor')
        # clone() turns the inference tensor into an ordinary constant autograd can save.
        teacher_logits = teacher_logits.clone()
        if self.kd_form == PSKD:
            losses['loss_kd'] = kd_weight * soft_target_ce(logits, teacher_logits,
                                                           self.temperature)
        else:
            losses['loss_kd'] = kd_weight * distill_loss(logits, teacher_logits,
                                                         self.temperature, self.kd_scale_t2)
        return losses
