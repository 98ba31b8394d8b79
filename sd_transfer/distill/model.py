"""The SD student: an mmpretrain ``ImageClassifier`` whose loss adds a distillation term."""
from typing import List, Optional

import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .loss import distill_loss


@MODELS.register_module()
class SnapshotDistiller(ImageClassifier):
    """``ImageClassifier`` trained with ``ce_weight * CE + kd_weight * KL(teacher || student)``.

    Every ``ImageClassifier`` config works after changing its ``type``: backbone, neck, head,
    data preprocessor, ``predict`` and ``extract_feat`` are unchanged, so mmpretrain's evaluator
    and pipelines see an ordinary classifier. The CE part is the head's own loss, so label
    smoothing or mixup targets configured upstream keep working.

    The teacher is set by :class:`SnapshotTeacherHook`. It is held in a tuple so that it is *not*
    a registered submodule: it stays out of ``state_dict()``, ``parameters()`` (so out of the
    optimizer), DDP's gradient sync and ``model.train()``. Until it is set (the first cycle) the
    loss is plain, unweighted CE and no teacher forward runs, so cycle 1 is the cyclic baseline.

    Args:
        temperature: softening temperature T of both distributions.
        ce_weight: weight of the CE term; ``None`` means ``1 + 1 / T``.
        kd_weight: weight of the KL term.
        kd_scale_t2: multiply the KL term by T**2. With ``ce_weight=1-a, kd_weight=a`` this is
            the common ``(1-a)·CE + a·T²·KL``.
    """

    def __init__(self, *args, temperature: float = 3.0, ce_weight: Optional[float] = None,
                 kd_weight: float = 1.0, kd_scale_t2: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if not hasattr(self.head, '_get_loss'):
            raise TypeError(f'{type(self.head).__name__} is not an mmpretrain ClsHead; '
                            'SnapshotDistiller needs its logits and its loss')
        self.temperature = float(temperature)
        self.ce_weight = 1.0 + 1.0 / self.temperature if ce_weight is None else float(ce_weight)
        self.kd_weight = float(kd_weight)
        self.kd_scale_t2 = bool(kd_scale_t2)
        self._teacher = ()

    @property
    def teacher(self) -> Optional[torch.nn.Module]:
        return self._teacher[0] if self._teacher else None

    def set_teacher(self, teacher: Optional[torch.nn.Module]) -> None:
        self._teacher = (teacher, ) if teacher is not None else ()

    def sd_settings(self) -> dict:
        return dict(temperature=self.temperature, ce_weight=self.ce_weight,
                    kd_weight=self.kd_weight, kd_scale_t2=self.kd_scale_t2)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        logits = self.head(self.extract_feat(inputs))
        losses = self.head._get_loss(logits, data_samples)
        ce = losses.pop('loss')
        teacher = self.teacher
        if teacher is None:  # cycle 1: plain CE, exactly the cyclic baseline
            losses['loss_ce'] = ce
            return losses
        with torch.inference_mode():
            teacher_logits = teacher(inputs, mode='tensor')
        losses['loss_ce'] = self.ce_weight * ce
        # clone() turns the inference tensor into an ordinary constant autograd can save.
        losses['loss_kd'] = self.kd_weight * distill_loss(
            logits, teacher_logits.clone(), self.temperature, self.kd_scale_t2)
        return losses
