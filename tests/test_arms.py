"""What SD adds, isolated: the control arm, the loss forms, a teacher from a file, born-again
generations, and the cost each arm records."""
import json
import pickle

import pytest
import torch
import torch.nn.functional as F
from conftest import Exploit, run_tool
from probes import tiny_distiller

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

SHORT = ['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.periods=[1,1]',
         'param_scheduler.restart_weights=[1,1]']
BAN = 'configs/pretrain/tiny/resnet18_ban_tiny.py'
BAN_SHORT = ['--cfg-options', 'train_cfg.max_epochs=2', 'param_scheduler.T_max=2']


def test_loss_forms():
    assert tiny_distiller().sd_settings() == dict(temperature=3.0, kd_form='sd', ce_weight=4 / 3,
                                          kd_weight=1.0, kd_scale_t2=False)
    assert tiny_distiller(kd_form='hinton').sd_settings() == dict(
        temperature=3.0, kd_form='hinton', ce_weight=pytest.approx(0.1), kd_weight=0.9,
        kd_scale_t2=True)
    assert tiny_distiller(kd_form='hinton', alpha=0.5, kd_weight=0.7).sd_settings()['kd_weight'] == 0.7
    with pytest.raises(ValueError, match='kd_form'):
        tiny_distiller(kd_form='born-again')


def test_control_arm_loss_is_weighted_ce_without_teacher_forward():
    from mmpretrain.structures import DataSample
    student, teacher = tiny_distiller(kd_weight=0.0), tiny_distiller().eval().requires_grad_(False)
    forwards = []
    teacher.register_forward_hook(lambda *_: forwards.append(1))
    student.set_teacher(teacher)
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 32, 32)
    samples = [DataSample().set_gt_label(i) for i in range(4)]
    losses = student.loss(inputs, samples)
    assert set(losses) == {'loss_ce'} and not forwards and not student.taught_last_step
    with torch.no_grad():
        ce = F.cross_entropy(student.head(student.extract_feat(inputs)), torch.arange(4))
    assert losses['loss_ce'].item() == pytest.approx(4 / 3 * ce.item(), rel=1e-5)


def _probe(work_dir):
    with open(work_dir / 'probe_rank0.json') as f:
        return json.load(f)


def test_control_arm_run(tiny_imagenet, tmp_path):
    """Cycle 1 bit-identical to the cyclic baseline; from cycle 2 the teacher is swapped in but
    never run; the cost says so."""
    common = ['--data-root', tiny_imagenet, '--seed', '0', *SHORT]
    run_tool('tools/pretrain.py', 'tests/configs/resnet18_ceweight_tiny_probe.py', '--work-dir',
             str(tmp_path / 'control'), *common, env={'PYTHONPATH': 'tests'})
    run_tool('tools/pretrain.py', 'configs/pretrain/tiny/resnet18_cyclic_tiny.py', '--work-dir',
             str(tmp_path / 'cyclic'), *common)
    control = torch.load(tmp_path / 'control/backbone_cycle1.pth', weights_only=True)
    cyclic = torch.load(tmp_path / 'cyclic/backbone_cycle1.pth', weights_only=True)
    for key, value in cyclic['state_dict'].items():
        assert torch.equal(control['state_dict'][key], value), key
    rec = _probe(tmp_path / 'control')
    half = rec['iters'] // 2
    digests = rec['teacher_digest']
    assert digests[:half] == [None] * half and None not in digests[half:]
    assert rec['teacher_forward_iters'] == [] and rec['kd_iters'] == []
    final = torch.load(tmp_path / 'control/backbone.pth', weights_only=True)['meta']
    assert final['sd']['kd_weight'] == 0.0 and final['sd']['ce_weight'] == pytest.approx(4 / 3)
    assert final['cost']['teacher_images'] == 0 and final['cost']['images'] == 2 * 600


def test_sd_cost_counts_teacher_forwards(tiny_imagenet, tmp_path):
    run_tool('tools/pretrain.py', 'configs/pretrain/tiny/resnet18_sd_tiny.py', '--work-dir',
             str(tmp_path), '--data-root', tiny_imagenet, '--seed', '0', *SHORT)
    meta = torch.load(tmp_path / 'backbone.pth', weights_only=True)['meta']
    assert meta['cost']['images'] == 1200 and meta['cost']['teacher_images'] == 600
    assert meta['cost']['devices'] == 1 and meta['cost']['device_hours'] > 0
    with open(tmp_path / 'summary.json') as f:
        assert json.load(f)['cost']['images'] == 1200
    # the teacher's accuracy at the swap: the student's val metrics at the end of cycle 1
    records = [json.loads(line) for line in
               next(tmp_path.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    student = [r for r in records if 'accuracy/top1' in r and r['step'] == 1]
    teacher = [r for r in records if 'teacher/accuracy/top1' in r]
    assert len(teacher) == 1 and teacher[0]['step'] == 1.0
    assert teacher[0]['teacher/accuracy/top1'] == student[0]['accuracy/top1']


@pytest.fixture(scope='module')
def teacher_file(tiny_imagenet, tmp_path_factory):
    """A finished tiny run's full checkpoint: a classifier to teach from."""
    work_dir = tmp_path_factory.mktemp('teacher')
    run_tool('tools/pretrain.py', BAN, '--work-dir', str(work_dir), '--data-root', tiny_imagenet,
             '--seed', '0', *BAN_SHORT)
    return work_dir / 'epoch_2.pth'


def _fails(proc, *needles):
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith('error: ') and all(n in line for n in needles), line
    return line


def test_teacher_from_file_is_verified(teacher_file, tiny_imagenet, tmp_path):
    def pretrain(*extra, config=BAN):
        return run_tool('tools/pretrain.py', config, '--work-dir', str(tmp_path / 'w'),
                        '--data-root', tiny_imagenet, *extra, check=False)
    # a ResNet-18 checkpoint for a ResNet-50 teacher config: named, key by key
    _fails(pretrain('--teacher', str(teacher_file), '--teacher-config',
                    'configs/pretrain/resnet50_ban_8xb32_in1k.py'),
           str(teacher_file), 'does not fit the teacher model', 'missing keys')
    evil = tmp_path / 'evil.pth'
    marker = tmp_path / 'pwned'
    with open(evil, 'wb') as f:
        pickle.dump({'state_dict': {}, 'x': Exploit(marker)}, f)
    _fails(pretrain('--teacher', str(evil)), 'refused: not only tensors')
    assert not marker.exists()
    _fails(pretrain('--teacher', str(teacher_file),
                    config='configs/pretrain/tiny/resnet18_sd_tiny.py'),
           'has its own teacher')
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('config, needle', [
    ('configs/pretrain/tiny/resnet18_sd_tiny.py', 'has its own teacher'),
    ('configs/pretrain/tiny/resnet18_cyclic_tiny.py', 'not ImageClassifier')])
def test_born_again_refuses_a_config_before_generation_1(tiny_imagenet, tmp_path, config, needle):
    """What generation 2 would refuse is refused before generation 1 trains for days."""
    proc = run_tool('tools/born_again.py', config, '--generations', '2', '--work-dir',
                    str(tmp_path), '--data-root', tiny_imagenet, check=False)
    _fails(proc, needle)
    assert not list(tmp_path.iterdir())


def test_born_again_generations_resume_generation_by_generation(tiny_imagenet, tmp_path):
    def born_again(generations, kill_at=None):
        env = {'PYTHONPATH': 'tests'}
        if kill_at is not None:
            env['SD_PROBE_KILL_AT_ITER'] = str(kill_at)
        return run_tool('tools/born_again.py', 'tests/configs/resnet18_ban_tiny_probe.py',
                        '--generations', str(generations), '--work-dir', str(tmp_path),
                        '--data-root', tiny_imagenet, '--seed', '0', *BAN_SHORT, env=env,
                        check=False)
    assert born_again(1).returncode == 0
    # then generation 2 is killed in its second epoch (iteration 30 of 38) ...
    killed = born_again(2, kill_at=30)
    assert killed.returncode == -9
    assert not (tmp_path / 'gen2/backbone.pth').exists()
    # ... and the same command again finishes it from its last checkpoint
    again = born_again(2)
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    assert 'generation 1 already finished' in log and 'resumed epoch: 1' in log
    with open(tmp_path / 'summary.json') as f:
        summary = json.load(f)
    gen1, gen2 = summary['generations']
    assert gen1['cost']['teacher_images'] == 0 and gen2['cost']['teacher_images'] == 1200
    assert summary['total_cost']['images'] == gen1['cost']['images'] + gen2['cost']['images']
    meta = torch.load(tmp_path / 'gen2/backbone.pth', weights_only=True)['meta']
    assert meta['generation'] == 2
    # generation k has the seed seed + k - 1: a student does not start from its teacher's init
    assert (gen1['seed'], gen2['seed'], meta['seed']) == (0, 1, 1)
    assert meta['teacher']['path'] == str(tmp_path / 'gen1' / 'epoch_2.pth')
    rec = _probe(tmp_path / 'gen2')  # the resumed part: taught at every iteration
    assert rec['kd_iters'] == list(range(rec['first_iter'], rec['iters']))
