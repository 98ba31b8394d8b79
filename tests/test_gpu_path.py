"""The GPU path, checked on CPU: AMP dtype choice, RoIAlign/NMS inputs, channels_last ordering,
determinism settings, setup choices and the one-command GPU check."""
import json
import os
import subprocess

import pytest
import torch
from conftest import REPO, run_tool
from mmcv.ops import roi_align
from probes import tiny_distiller

from sd_transfer.engine import (DeterminismHook, RunInfoHook, amp_settings,
                                prepare_deterministic_env)
from sd_transfer.transfer.kernel_inputs import ContiguousRoIExtractor, FloatProposalRPNHead

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick


def _extractor():
    return ContiguousRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                  out_channels=8, featmap_strides=[4, 8])


def _feats_and_rois():
    torch.manual_seed(0)
    feats = (torch.randn(2, 8, 32, 32), torch.randn(2, 8, 16, 16))
    rois = torch.tensor([[0, 4., 4., 60., 50.], [1, 10., 20., 120., 110.], [0, 0., 0., 16., 16.]])
    return feats, rois


def test_roi_features_do_not_depend_on_the_memory_format():
    feats, rois = _feats_and_rois()
    cl = tuple(f.to(memory_format=torch.channels_last) for f in feats)
    # mmcv's kernel itself reads channels_last input as if it were NCHW: wrong values, no error
    raw = roi_align(feats[0], rois, 7, 0.25, 0, 'avg', True)
    assert not torch.allclose(roi_align(cl[0], rois, 7, 0.25, 0, 'avg', True), raw, atol=1e-3)
    extractor = _extractor()
    torch.testing.assert_close(extractor(cl, rois), extractor(feats, rois), rtol=0, atol=0)


def test_roi_features_under_bf16():
    feats, rois = _feats_and_rois()
    with pytest.raises(RuntimeError, match='BFloat16'):  # mmcv has no bf16 kernel
        roi_align(feats[0].bfloat16(), rois.bfloat16(), 7, 0.25, 0, 'avg', True)
    extractor = _extractor()
    out = extractor(tuple(f.bfloat16() for f in feats), rois)
    assert out.dtype == torch.bfloat16
    # pooled in fp32 from the bf16 features, exact box coordinates
    expected = extractor(tuple(f.bfloat16().float() for f in feats), rois)
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)


def test_rpn_proposals_under_bf16():
    from mmengine.config import ConfigDict
    head = FloatProposalRPNHead(in_channels=8, feat_channels=8, anchor_generator=dict(
        type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                        target_stds=[1.0] * 4))
    feats, _ = _feats_and_rois()
    cfg = ConfigDict(nms_pre=100, max_per_img=20, nms=dict(type='nms', iou_threshold=0.7),
                     min_bbox_size=0)
    metas = [dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))] * 2
    with torch.autocast('cpu', dtype=torch.bfloat16):
        cls_scores, bbox_preds = head(feats)
        assert cls_scores[0].dtype == torch.bfloat16
        results = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=cfg)
    assert results[0].bboxes.dtype == torch.float32 and 0 < len(results[0]) <= 20


@pytest.mark.parametrize('capability, dtype, scaler', [
    ((7, 0), 'float16', 'dynamic'), ((7, 5), 'float16', 'dynamic'),
    ((8, 0), 'bfloat16', dict(enabled=False)), ((9, 0), 'bfloat16', dict(enabled=False))])
def test_amp_dtype_follows_native_bf16(monkeypatch, capability, dtype, scaler):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda *a: capability)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *a: 'GPU')
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: True)  # emulation counts
    settings, why = amp_settings()
    assert settings == dict(type='AmpOptimWrapper', dtype=dtype, loss_scale=scaler)
    assert f'compute capability {capability[0]}.{capability[1]}' in why


@pytest.mark.parametrize('flags, native', [
    (dict(avx2=True), False), (dict(avx2=True, avx512_f=True), False),
    (dict(avx512_f=True, avx512_bf16=True), True), (dict(amx_tile=True, amx_bf16=True), True)])
def test_amp_on_cpu_is_bf16_autocast_where_bf16_is_native(monkeypatch, flags, native):
    """Without AVX512_BF16 or AMX torch emulates bf16 (17x slower, see amp.py): fp32 then."""
    monkeypatch.setattr(torch.cpu, 'get_capabilities', lambda: flags)
    settings, why = amp_settings()
    if native:
        assert settings == dict(type='CPUAmpOptimWrapper') and why.startswith('bf16 autocast')
    else:
        assert settings == {} and why.startswith('fp32: --amp has no effect on this CPU')
    hook = RunInfoHook(amp=True)
    assert (hook.precision, hook.why) == ('bfloat16' if native else 'fp32', why)


def test_deterministic_on_cuda_is_warn_only(monkeypatch):
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    prepare_deterministic_env()
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'

    class Runner:
        class logger:
            info = staticmethod(lambda message: messages.append(message))
    messages = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    torch.use_deterministic_algorithms(True)
    try:
        DeterminismHook().before_train(Runner)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert 'adaptive_avg_pool2d backward' in messages[0]
    finally:
        torch.use_deterministic_algorithms(False)


def _setup_plan(tmp_path, nvcc_release=None, **env):
    """``tools/setup_env.sh`` in plan mode, with a fake nvcc of ``nvcc_release`` (or none)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = str(bin_dir) + ':/usr/bin:/bin'
    if nvcc_release:
        nvcc = bin_dir / 'nvcc'
        nvcc.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {nvcc_release}, '
                        f'V{nvcc_release}.1"\n')
        nvcc.chmod(0o755)
    return subprocess.run(['bash', 'tools/setup_env.sh'], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, PATH=path, SD_SETUP_PLAN='1', **env))


def test_setup_choices(tmp_path):
    plans = {}
    for variant in ('default', 'cu126', 'cpu'):
        proc = _setup_plan(tmp_path, SD_TORCH_VARIANT=variant)
        assert proc.returncode == 0, proc.stderr
        plans[variant] = proc.stdout
    assert 'torch 2.14.1 (CUDA 13.0) from PyPI' in plans['default']
    assert 'CUDA 12.6) --index-url https://download.pytorch.org/whl/cu126' in plans['cu126']
    assert '(CPU only) --index-url https://download.pytorch.org/whl/cpu' in plans['cpu']
    stamps = {p.split('stamp ')[1].strip() for p in plans.values()}
    assert len(stamps) == 3  # a changed choice re-runs setup

    ok = _setup_plan(tmp_path, '13.0', SD_MMCV_CUDA='1')
    assert ok.returncode == 0 and 'mmcv 2.1.0 ops: cuda' in ok.stdout, ok.stderr
    mismatch = _setup_plan(tmp_path, '12.4', SD_MMCV_CUDA='1')
    assert mismatch.returncode == 1
    assert 'nvcc is CUDA 12.4, torch 2.14.1 (default) is built with CUDA 13.0' in mismatch.stderr
    assert 'SD_TORCH_VARIANT=cu124' in mismatch.stderr
    assert 'needs nvcc' in _setup_plan(tmp_path / 'none', SD_MMCV_CUDA='1').stderr
    assert 'CPU-only torch' in _setup_plan(tmp_path, SD_MMCV_CUDA='1',
                                           SD_TORCH_VARIANT='cpu').stderr


def test_gpu_check_runs_on_cpu(tmp_path):
    proc = run_tool('benchmarks/gpu_check.py', '--device', 'cpu', '--small', '--out',
                    str(tmp_path), timeout=900)
    with open(tmp_path / 'gpu_check.json') as f:
        result = json.load(f)
    assert result['device'] == 'cpu' and result['amp'] and result['channels_last']
    assert result['throughput']['ce_images_per_s'] > 0 and result['throughput']['sd_over_ce'] > 0
    assert result['pipeline']['incomplete'] == 0
    assert any(key.startswith('detection: resnet18_sd_tiny') for key in result['pipeline'][
        'headline'])
    loader = result['loader']
    # the full recipe's loader (224 px crops, its 5 workers) on photos of ImageNet's shape
    assert (loader['crop'], loader['workers']) == (224, 5) and loader['image_size'] == [160, 120]
    assert loader['images_per_s_per_process'] > 0 and loader['node_cores'] > loader['node_gpus']
    assert '| SD / CE |' in proc.stdout and 'a node of 8 GPUs needs about' in proc.stdout


def test_sd_step_under_cpu_amp_runs_student_and_teacher_in_bf16():
    """``--amp`` on CPU: the train step (student and teacher) under bf16 autocast, the KD loss
    in fp32, gradients and weights in fp32."""
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    from sd_transfer.engine import CPUAmpOptimWrapper

    student, teacher = tiny_distiller(), tiny_distiller().eval().requires_grad_(False)
    student.set_teacher(teacher)
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            dtypes[name] = output.dtype
        return hook
    for name, net in (('student', student), ('teacher', teacher)):
        net.head.fc.register_forward_hook(record(name))
    data = dict(inputs=[torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8)] * 4,
                data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    wrapper = CPUAmpOptimWrapper(optimizer=torch.optim.SGD(student.parameters(), lr=0.1))
    assert isinstance(wrapper, OptimWrapper)
    losses = student.train_step(data, wrapper)
    assert dtypes == dict(student=torch.bfloat16, teacher=torch.bfloat16)
    assert torch.isfinite(losses['loss']) and losses['loss_kd'].dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in student.parameters() if p.grad is not None)
