"""Runs and tools print what is ours: upstream's pkg_resources deprecation warning is filtered at
our entry points (by its message and the two places mmengine raises it), nothing broader."""
import subprocess
import sys

import pytest
from conftest import REPO, run_tool

from sd_transfer.datasets import make_tiny_imagenet

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick


def test_a_run_and_a_tool_print_no_pkg_resources_warning(tmp_path):
    data = tmp_path / 'imagenet'
    make_tiny_imagenet(str(data), train_per_class=4, val_per_class=2)
    run = run_tool('tools/pretrain.py', 'configs/pretrain/tiny/resnet18_cyclic_tiny.py',
                   '--work-dir', str(tmp_path / 'w'), '--data-root', str(data), '--cfg-options',
                   'train_cfg.max_epochs=1', 'param_scheduler.periods=[1]',
                   'param_scheduler.restart_weights=[1]')
    assert (tmp_path / 'w' / 'backbone.pth').is_file()
    report = run_tool('tools/report.py', str(tmp_path / 'w'), '--out', str(tmp_path / 'r'))
    for proc in (run, report):
        assert 'pkg_resources' not in proc.stderr + proc.stdout


def test_only_that_warning_is_filtered():
    """mmengine's import of pkg_resources is silent; the same words from elsewhere, and other
    warnings, still show."""
    code = ('import warnings, sd_transfer.entry, mmengine.utils.package_utils as p\n'
            'p.is_installed("mmdet")\n'
            'warnings.warn("pkg_resources is deprecated as an API (ours)")\n'
            'warnings.warn("another warning of ours")\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if 'Warning' in line]
    assert len(lines) == 2, proc.stderr
    assert 'pkg_resources is deprecated as an API (ours)' in lines[0]
    assert 'another warning of ours' in lines[1]
