"""The teacher the student runs: BN folded (and compiled) gives the eval-mode teacher's logits,
for plain and deep-stem ResNets, channels_last and bf16 autocast; later swaps update it in place;
a compiler that fails falls back to the uncompiled teacher with one log line."""
import subprocess
import sys

import pytest
import torch
from conftest import REPO, tool_env
from mmengine.registry import DefaultScope
from mmpretrain.models import ImageClassifier

from sd_transfer.distill.inference_teacher import InferenceTeacher

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick


def classifier(arch='ResNet', depth=18, seed=0):
    """An eval-mode classifier whose BN statistics are not the identity (as after training)."""
    torch.manual_seed(seed)
    channels = 512 if depth < 50 else 2048
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = ImageClassifier(backbone=dict(type=arch, depth=depth),
                                neck=dict(type='GlobalAveragePooling'),
                                head=dict(type='LinearClsHead', num_classes=10,
                                          in_channels=channels))
    model.init_weights()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval().requires_grad_(False)


def _relative(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


@pytest.mark.parametrize('arch, depth', [('ResNet', 18), ('ResNet', 50), ('ResNetV1c', 18),
                                         ('ResNetV1d', 50)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_folded_teacher_gives_the_eval_mode_logits(arch, depth, channels_last):
    teacher = classifier(arch, depth)
    if channels_last:
        teacher.to(memory_format=torch.channels_last)
    runs = InferenceTeacher(compile=False)
    runs.update(teacher, steps=1, like=teacher)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runs.modules())
    x = torch.randn(4, 3, 64, 64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        assert all(p.is_contiguous(memory_format=torch.channels_last)
                   for p in runs.model.parameters() if p.dim() == 4)
    with torch.inference_mode():
        assert _relative(runs(x), teacher(x, mode='tensor')) < 1e-5
        with torch.autocast('cpu', dtype=torch.bfloat16):  # the student's --amp on CPU
            folded, plain = runs(x), teacher(x, mode='tensor')
    assert folded.dtype == plain.dtype == torch.bfloat16
    assert _relative(folded, plain) < 0.05  # bf16 keeps 8 bits of mantissa


def test_a_later_swap_updates_the_same_tensors():
    first, second = classifier(seed=0), classifier(seed=1)
    runs = InferenceTeacher(compile=False)
    runs.update(first, steps=1, like=first)
    tensors = {k: v.data_ptr() for k, v in runs.model.state_dict().items()}
    runs.update(second, steps=1, like=second)
    assert {k: v.data_ptr() for k, v in runs.model.state_dict().items()} == tensors
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert _relative(runs(x), second(x, mode='tensor')) < 1e-5


def test_compiled_teacher_gives_the_eval_mode_logits_and_times_its_compile():
    teacher = classifier()
    runs = InferenceTeacher(compile='auto')
    runs.update(teacher, steps=100, like=teacher)  # a short run: compiling would not pay
    assert runs.describe() == 'BN folded into the convolutions, not compiled'
    runs = InferenceTeacher(compile=True)
    runs.update(teacher, steps=100, like=teacher)
    x = torch.randn(8, 3, 48, 48)
    with torch.inference_mode():
        out = runs(x)
        assert runs.describe() == 'BN folded into the convolutions, compiled'
        assert runs.compile_seconds > 0  # logged too, with the first forward
        assert _relative(out, teacher(x, mode='tensor')) < 1e-5
        runs.update(classifier(seed=1), steps=100, like=teacher)  # swapped in place: no recompile
        assert _relative(runs(x), classifier(seed=1)(x, mode='tensor')) < 1e-5


def test_a_failing_compiler_falls_back_with_one_line(tmp_path):
    """No C++ compiler (CXX names none, as on a minimal node image): inductor cannot build (an
    empty cache: nothing built before may stand in)."""
    code = f'''
import sys, torch
sys.path.insert(0, {str(REPO + '/tests')!r})
from test_inference_teacher import classifier
from sd_transfer.distill.inference_teacher import InferenceTeacher
teacher = classifier()
runs = InferenceTeacher(compile=True)
runs.update(teacher, steps=1, like=teacher)
x = torch.randn(2, 3, 32, 32)
with torch.inference_mode():
    assert torch.allclose(runs(x), teacher(x, mode='tensor'), rtol=1e-5, atol=1e-6)
    runs(x)
print(runs.describe())
'''
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=tool_env(dict(CXX='/nonexistent/g++',
                                                   TORCHINDUCTOR_CACHE_DIR=str(tmp_path))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = [line for line in (proc.stdout + proc.stderr).splitlines()
              if 'compiling the teacher failed' in line]
    assert len(failed) == 1 and 'it runs uncompiled' in failed[0]
    assert proc.stdout.strip().endswith('BN folded into the convolutions, not compiled')
