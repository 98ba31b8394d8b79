"""The multi-GPU path (mmengine's pytorch launcher under torchrun), run on CPU with gloo."""
import json

import pytest
from conftest import run_tool

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

PROBE_CONFIG = 'tests/configs/resnet18_sd_tiny_probe.py'


def test_two_process_sd_run_agrees_across_ranks(tiny_imagenet, tmp_path):
    """With --channels-last: DDP is built on the channels_last model, so its gradient buckets
    match the gradients' layout (no per-step copies, no stride warning)."""
    proc = run_tool(
        '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29531',
        'tools/pretrain.py', PROBE_CONFIG, '--launcher', 'pytorch', '--channels-last',
        '--work-dir', str(tmp_path), '--data-root', tiny_imagenet, '--seed', '0',
        '--cfg-options', 'param_scheduler.periods=[1,1]', 'param_scheduler.restart_weights=[1,1]',
        'train_cfg.max_epochs=2', env={'PYTHONPATH': 'tests', 'OMP_NUM_THREADS': '1'})
    ranks = []
    for r in (0, 1):
        with open(tmp_path / f'probe_rank{r}.json') as f:
            ranks.append(json.load(f))
    per_rank_iters = ranks[0]['iters']
    assert per_rank_iters == ranks[1]['iters'] > 0
    # One swap, at the start of cycle 2, on both ranks; identical weights at the end.
    assert ranks[0]['kd_iters'] == ranks[1]['kd_iters'] == list(
        range(per_rank_iters // 2, per_rank_iters))
    assert ranks[0]['student_param_digest'] == ranks[1]['student_param_digest']
    # BN running statistics stay per rank (mmengine's DDP: broadcast_buffers=False), but the
    # swap takes rank 0's: one teacher, BN buffers included, on every rank
    assert ranks[0]['teacher_digest'][-1] is not None
    assert ranks[0]['teacher_digest'] == ranks[1]['teacher_digest']
    assert (tmp_path / 'backbone.pth').is_file()
    assert 'Grad strides do not match bucket view strides' not in proc.stderr
    assert 'channels_last: model converted' in proc.stdout  # rank 0 logs
