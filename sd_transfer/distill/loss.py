"""The distillation terms: SD's KL, and PS-KD's soft-target cross-entropy."""
import torch
import torch.nn.functional as F


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 temperature: float, scale_by_t2: bool = False) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch.

    Computed in float32 so that bf16/fp16 autocast cannot underflow the small probabilities that
    carry the teacher's "secondary information". ``scale_by_t2`` multiplies by T**2, which keeps
    gradient magnitudes comparable across temperatures (Hinton et al.).
    """
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction='batchmean', log_target=True)
    return kl * (t * t) if scale_by_t2 else kl


def soft_target_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """CE(softmax(teacher / T), student / T), averaged over the batch (in float32).

    PS-KD's target is ``(1 - a)·y + a·p_teacher``: its CE is ``(1 - a)·CE(y) + a·`` this. It
    equals KL(teacher || student) plus the teacher's entropy: the same gradient, the loss value
    the paper reports.
    """
    t = float(temperature)
    p_teacher = F.softmax(teacher_logits.float() / t, dim=1)
    return -(p_teacher * F.log_softmax(student_logits.float() / t, dim=1)).sum(dim=1).mean()
