"""The comparison arms' mechanisms, not just that they run: PS-KD's per-epoch teacher and rising
alpha, the EMA teacher's recurrence, label smoothing's loss, the cosine arm without restarts; and
an exact resume in the middle of a PS-KD and an EMA run (CPU, as tests/test_resume.py)."""
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from sd_transfer.datasets import make_tiny_imagenet

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

EPOCHS = 4
SHORT = ['--cfg-options', f'train_cfg.max_epochs={EPOCHS}', 'param_scheduler.periods=[2,2]',
         'param_scheduler.restart_weights=[1,1]', 'train_dataloader.persistent_workers=False']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """100 images: 4 steps an epoch."""
    root = tmp_path_factory.mktemp('data') / 'imagenet'
    make_tiny_imagenet(str(root), train_per_class=10, val_per_class=4)
    return str(root)


def _run(arm, data, work_dir, *extra, kill_at=None, check=True, short=SHORT):
    env = {'PYTHONPATH': 'tests'}
    if kill_at is not None:
        env['SD_PROBE_KILL_AT_ITER'] = str(kill_at)
    return run_tool('tools/pretrain.py', f'tests/configs/resnet18_{arm}_tiny_probe.py',
                    '--work-dir', str(work_dir), '--data-root', data, '--seed', '0',
                    '--deterministic', *short, *extra, env=env, check=check)


def _probe(work_dir):
    return json.loads((work_dir / 'probe_rank0.json').read_text())


@pytest.fixture(scope='module')
def runs(data, tmp_path_factory):
    root = tmp_path_factory.mktemp('arms')
    for arm in ('pskd', 'ema-teacher'):
        _run(arm, data, root / arm)
    return root


def test_pskd_teacher_is_the_last_epochs_student_and_alpha_rises_linearly(runs):
    rec = _probe(runs / 'pskd')
    per_epoch = rec['iters'] // EPOCHS
    teachers = rec['teacher_digest']
    assert teachers[:per_epoch] == [None] * per_epoch  # epoch 1: plain CE, no teacher
    for epoch in range(1, EPOCHS):
        first = epoch * per_epoch
        epoch_teachers = teachers[first:first + per_epoch]
        assert len(set(epoch_teachers)) == 1  # one teacher for the whole epoch ...
        assert epoch_teachers[0] != teachers[first - 1]  # ... a new one at each epoch's start
        # alpha_t = 0.8 (epoch + 1) / E, the line of the paper's code, for every step
        assert rec['alpha'][first:first + per_epoch] == pytest.approx(
            [0.8 * (epoch + 1) / EPOCHS] * per_epoch)
    assert rec['kd_iters'] == list(range(per_epoch, rec['iters']))
    meta = torch.load(runs / 'pskd' / 'backbone.pth', weights_only=True)['meta']
    assert (meta['sd']['kd_form'], meta['sd']['alpha'], meta['sd']['refresh']) == (
        'pskd', 0.8, 'epoch')


def test_ema_teacher_follows_the_recurrence_and_teaches_from_cycle_2(runs):
    rec = _probe(runs / 'ema-teacher')
    m = 0.99
    student, teacher = rec['student_params'], rec['teacher_params']
    # the parameter digest is linear in the weights, so it follows the same recurrence:
    # teacher_k = m teacher_(k-1) + (1 - m) student_k, the first update a copy
    assert teacher[0] == pytest.approx(student[0], rel=1e-9)
    expected = teacher[0]
    for k in range(1, rec['iters']):
        expected = m * expected + (1 - m) * student[k]
        assert teacher[k] == pytest.approx(expected, rel=1e-6), k
        assert teacher[k] != pytest.approx(student[k], rel=1e-6)  # an average, not a copy
    per_epoch = rec['iters'] // EPOCHS
    assert rec['kd_iters'] == list(range(2 * per_epoch, rec['iters']))  # cycle 2 on
    meta = torch.load(runs / 'ema-teacher' / 'backbone.pth', weights_only=True)['meta']
    assert (meta['sd']['refresh'], meta['sd']['momentum']) == ('ema', m)


@pytest.mark.parametrize('arm, kill_at', [('pskd', 9), ('ema-teacher', 10)])
def test_resume_in_the_middle_is_exact(runs, data, tmp_path, arm, kill_at):
    """SIGKILLed in the middle of epoch 3 (PS-KD) or of cycle 2 (EMA), after the epoch-2
    checkpoint: the resumed run has the uninterrupted one's losses, teachers and weights."""
    killed = _run(arm, data, tmp_path, kill_at=kill_at, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    _run(arm, data, tmp_path, '--resume')
    ref, got = _probe(runs / arm), _probe(tmp_path)
    start = got['first_iter']
    assert start == 8
    assert got['losses'] == ref['losses'][start:]
    assert got['teacher_params'] == ref['teacher_params'][start:]
    a = torch.load(runs / arm / f'epoch_{EPOCHS}.pth', weights_only=True)
    b = torch.load(tmp_path / f'epoch_{EPOCHS}.pth', weights_only=True)
    assert all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in a['state_dict'])
    assert all(torch.equal(a['sd_teacher']['state_dict'][k], b['sd_teacher']['state_dict'][k])
               for k in a['sd_teacher']['state_dict'])


def test_label_smoothing_loss_is_mmpretrains():
    """The arm's loss is (1 - eps) CE + eps x the mean -log p over classes (LabelSmoothLoss,
    mode 'original'), computed here by hand on one batch."""
    cfg = Config.fromfile(f'{REPO}/configs/pretrain/tiny/resnet18_lbs-cyclic_tiny.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 48, 48)
    labels = torch.tensor([0, 3, 7, 9])
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    loss = model.loss(inputs, samples)['loss']
    logits = model.head(model.extract_feat(inputs))
    log_p = F.log_softmax(logits, dim=1)
    eps, classes = 0.1, logits.shape[1]
    target = F.one_hot(labels, classes) * (1 - eps) + eps / classes
    assert loss.item() == pytest.approx(-(target * log_p).sum(1).mean().item(), rel=1e-6)


def test_cosine_arm_lr_has_no_restart(data, tmp_path):
    _run('coslr', data, tmp_path, short=['--cfg-options', 'train_cfg.max_epochs=2',
                                         'param_scheduler.T_max=2'])
    lr = _probe(tmp_path)['lr']
    assert lr[0] == 0.05 and all(b < a for a, b in zip(lr, lr[1:]))  # down, never up again
    meta = torch.load(tmp_path / 'backbone.pth', weights_only=True)['meta']
    assert meta['lr_schedule'] == ['CosineAnnealingLR'] and meta['num_cycles'] == 1
