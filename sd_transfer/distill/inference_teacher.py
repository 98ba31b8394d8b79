"""The teacher as the student runs it: a copy for inference only, cheaper than a forward of the
model it was copied from.

The teacher never trains, so its BN layers (eval mode: fixed statistics) fold into the
convolutions before them (mmcv's ``fuse_conv_bn``; logits equal to the eval-mode model's within
float rounding), and ``torch.compile`` can fuse the rest. Both are built once per run: a later
swap loads the new weights into the same folded copy in place, which keeps the compiled code
valid. The checkpoints keep the plain teacher; this copy is rebuilt from it after a resume.
"""
import copy
import time
from typing import Optional

import torch
from mmcv.cnn import fuse_conv_bn
from mmengine.logging import print_log

# Below this many teacher steps left a compile does not pay: it costs one to two minutes on a
# 2-core CPU for ResNet-18 (measured: 97 s, plus 24 s for the last, smaller batch of an epoch)
# and saves a few hundredths of a second per step there (about a millisecond per ResNet-50 step
# on a GPU: ten thousand steps are a tenth of one ImageNet run).
COMPILE_MIN_STEPS = 10000


class InferenceTeacher(torch.nn.Module):
    """What the student calls as its teacher: ``model(inputs, mode='tensor')``.

    Args:
        fold: fold BN into the convolutions (a copy refreshed by :meth:`update`); without it the
            teacher given to :meth:`update` is run as it is (an average updated every step,
            where refolding each step would cost more than it saves).
        compile: ``True``, ``False`` or ``'auto'``: compile when the run has at least
            :data:`COMPILE_MIN_STEPS` teacher steps left (``steps`` of :meth:`update`). A compile
            that fails (no C++ compiler, an unsupported op) falls back to the uncompiled teacher
            with one log line.
    """

    def __init__(self, fold: bool = True, compile='auto'):
        super().__init__()
        if compile not in (True, False, 'auto'):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.fold, self.compile = fold, compile
        self.model: Optional[torch.nn.Module] = None
        self.eval()
        self._compiled = ()  # (compiled callable, ) once compiled: not a registered submodule
        self._compile_pending = False
        self.compile_seconds = None

    def update(self, teacher: torch.nn.Module, steps: int, like: torch.nn.Module) -> None:
        """Run ``teacher``'s current weights from now on, in the memory format of ``like`` (the
        student); ``steps``: the teacher steps left in the run."""
        if not self.fold:
            self.model = teacher
        elif self.model is None:
            self.model = fuse_conv_bn(copy.deepcopy(teacher)).eval().requires_grad_(False)
            self.model.to(memory_format=memory_format(like))
        else:  # in place: the same tensors, so compiled code stays valid
            self.model.load_state_dict(fuse_conv_bn(copy.deepcopy(teacher)).state_dict())
        if not self._compiled and not self._compile_pending:
            self._compile_pending = self.compile is True or (
                self.compile == 'auto' and steps >= COMPILE_MIN_STEPS)

    def describe(self) -> str:
        how = ['BN folded into the convolutions' if self.fold else 'as trained (eval mode)']
        how.append('compiled' if self._compiled else 'to be compiled at its first forward'
                   if self._compile_pending else 'not compiled')
        return ', '.join(how)

    # Under --compile (mmengine compiles the whole train step) the teacher is not traced into the
    # student's graph: it runs (and compiles) on its own, its swaps cause no recompile there.
    @torch.compiler.disable
    def forward(self, inputs: torch.Tensor, mode: str = 'tensor'):
        if self._compile_pending:
            self._compile_pending = False
            compiled = torch.compile(self.model)
            start = time.perf_counter()
            try:
                out = compiled(inputs, mode=mode)
            except Exception as e:  # any compiler failure: run uncompiled, say so once
                print_log(f'SD: compiling the teacher failed ({type(e).__name__}: '
                          f'{str(e).strip().splitlines()[0][:200] if str(e).strip() else ""}); '
                          'it runs uncompiled', logger='current', level=30)
                return self.model(inputs, mode=mode)
            self._compiled = (compiled, )
            self.compile_seconds = time.perf_counter() - start
            print_log(f'SD: teacher compiled in {self.compile_seconds:.1f} s (its first forward)',
                      logger='current')
            return out
        run = self._compiled[0] if self._compiled else self.model
        return run(inputs, mode=mode)


def memory_format(model: torch.nn.Module) -> torch.memory_format:
    """channels_last if ``model``'s convolutions are (``--channels-last``), else contiguous."""
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1:
            return (torch.channels_last if p.is_contiguous(memory_format=torch.channels_last)
                    else torch.contiguous_format)
    return torch.contiguous_format
