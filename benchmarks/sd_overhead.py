"""Cost of snapshot distillation over plain CE training: per step, and over a whole 4-cycle run.

Per step: ``model.train_step`` of the cyclic baseline (ImageClassifier) vs the SD student with an
active teacher as SnapshotTeacherHook runs it in a full run (BN folded, compiled), and vs the
same student with the plain eval-mode teacher (how it ran before): same weights, batch and optim
wrapper.
Whole run: the Runner built from each tiny config (4 equal cycles, SD's teacher active in cycles
2-4 through the real hook), fed random in-memory images so that loading costs nothing.

    .venv/bin/python benchmarks/sd_overhead.py                  # CPU: ResNet-18, 64 px, batch 32
    python benchmarks/sd_overhead.py --arch resnet50 --image-size 224 --amp --channels-last  # GPU
"""
import os
import statistics
import tempfile
import time

import sd_transfer.entry  # noqa: F401  # isort: skip  first: before mmengine (see there)
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from common import (RandomPacked, activate_teacher, build_model, interleaved, load_cfg,
                    parser, ratio, print_machine, report, sync)

CYCLES = 4


def yes(flag):
    return 'yes' if flag else 'NO'


def check_teacher(student, teacher, batch, optim_wrapper, channels_last):
    """Print how the teacher's forward runs inside one SD train_step."""
    seen = {}

    def record(module, inputs, output):
        seen.update(inference=torch.is_inference_mode_enabled(), graph=output.grad_fn is not None)

    def record_stem(module, inputs, output):
        seen['cl_stem'] = output.is_contiguous(memory_format=torch.channels_last)

    model = getattr(teacher, 'model', teacher)  # the folded copy the InferenceTeacher runs
    handles = [teacher.register_forward_hook(record),
               model.backbone.conv1.register_forward_hook(record_stem)]
    student.train_step(batch, optim_wrapper)
    for h in handles:
        h.remove()
    in_train = sum(m.training for m in teacher.modules())
    optimized = {id(p) for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    outside = not any(id(p) in optimized or p.grad is not None for p in teacher.parameters())
    weights_cl = model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    if hasattr(teacher, 'describe'):
        print(f'teacher runs: {teacher.describe()}'
              + (f' (compile {teacher.compile_seconds:.1f} s, once per run)'
                 if teacher.compile_seconds else ''))
    print(f'teacher check: eval mode: {yes(in_train == 0)}')
    print(f'teacher check: forward under inference_mode: {yes(seen["inference"])}, '
          f'logits without autograd graph: {yes(not seen["graph"])}')
    print(f'teacher check: parameters outside the optimizer, no gradients: {yes(outside)}')
    print(f'teacher check: channels_last as the student ({channels_last}): '
          f'weights {yes(weights_cl == channels_last)}, '
          f'stem output {yes(seen["cl_stem"] == channels_last)}')


def per_step(args, steps, reps):
    ce_model, ce_optim = build_model(load_cfg('ce', args), args)
    students = {}
    data = RandomPacked(args.batch_size * steps, args.image_size)
    for runs in ('default', 'eval'):
        model, optim = build_model(load_cfg('sd', args), args)
        model.load_state_dict(ce_model.state_dict())
        start = time.perf_counter()
        teacher = activate_teacher(model, runs)
        sync(args.device)
        print(f'{runs} teacher: built as at cycle 2 in {time.perf_counter() - start:.3f} s '
              '(later cycles only load weights)')
        check_teacher(model, teacher, data.batches(1, args.batch_size)[0], optim,
                      args.channels_last)  # its first forward: compiles the default teacher
        students[runs] = model, optim

    def side(model, optim_wrapper):
        def prepare():
            batches = data.batches(steps, args.batch_size)

            def run():
                for batch in batches:
                    model.train_step(batch, optim_wrapper)
            return run
        return prepare

    times = interleaved(dict(ce=side(ce_model, ce_optim), sd=side(*students['default']),
                             sd_eval_teacher=side(*students['eval'])), reps, args.device)
    print(f'per step ({steps} steps per repetition):')
    for name, t in times.items():
        report(f'  {name}', t, steps * args.batch_size)
    return times


class LoopTimer(Hook):
    """Seconds from before the first to after the last training iteration (no Runner set-up)."""

    priority = 'LOWEST'

    def before_train(self, runner):
        sync(runner.model.data_preprocessor.device)
        self.start = time.perf_counter()

    def after_train(self, runner):
        sync(runner.model.data_preprocessor.device)
        self.seconds = time.perf_counter() - self.start


def whole_run(args, iters_per_cycle, reps, work_root):
    """Each side builds a fresh Runner from its tiny config and trains 4 cycles of one epoch."""
    count = 0

    def side(kind):
        def prepare():
            nonlocal count
            count += 1
            cfg = load_cfg(kind, args, work_dir=f'{work_root}/{kind}{count}')
            cfg.experiment_name = f'{kind}{count}'
            cfg.log_level = 'WARNING'
            cfg.train_dataloader = dict(
                dataset=dict(type='RandomPacked', length=args.batch_size * iters_per_cycle,
                             image_size=args.image_size),
                batch_size=args.batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True))
            cfg.train_cfg = dict(by_epoch=True, max_epochs=CYCLES, val_interval=CYCLES + 1)
            cfg.param_scheduler.periods = [1] * CYCLES
            cfg.param_scheduler.restart_weights = [1] * CYCLES
            for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                        'test_dataloader', 'test_cfg', 'test_evaluator'):
                cfg[key] = None
            cfg.default_hooks.checkpoint = None
            timer = LoopTimer()
            cfg.custom_hooks = [h for h in cfg.custom_hooks
                                if h.type not in ('BackboneExportHook', 'PlainCheckpointHook')]
            runner = Runner.from_cfg(cfg)
            runner.register_hook(timer)

            def run():
                runner.train()
                return timer.seconds
            return run
        return prepare

    times = interleaved(dict(ce=side('ce'), sd=side('sd')), reps, args.device)
    print(f'whole run ({CYCLES} cycles x {iters_per_cycle} iterations, teacher in cycles 2-4):')
    for name, t in times.items():
        report(f'  {name}', t, CYCLES * iters_per_cycle * args.batch_size)
    return times


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=1, help='train steps per timed repetition')
    p.add_argument('--reps', type=int, default=21, help='per-step repetitions of each side')
    p.add_argument('--iters-per-cycle', type=int, default=3, help='whole run: iterations per cycle')
    p.add_argument('--run-reps', type=int, default=4, help='whole runs of each side')
    args = p.parse_args()
    if args.quick:
        args.steps, args.reps, args.iters_per_cycle, args.run_reps = 1, 1, 1, 1
    print_machine(args.device)
    print(f'{args.arch}, {args.image_size} px, batch {args.batch_size}, {args.device}, '
          f'amp {args.amp}, channels_last {args.channels_last}')
    step = per_step(args, args.steps, args.reps)
    with tempfile.TemporaryDirectory() as work_root:
        run = whole_run(args, args.iters_per_cycle, args.run_reps, work_root)
    step_ratio = statistics.median(step['sd']) / statistics.median(step['ce'])
    print(f'SD/CE images/s per step: {1 / step_ratio:.2f} (GPU target >= 0.75)')
    print('whole run: the hook as configured (compile="auto": a run this short is not worth a '
          'compile, so its teacher runs folded, uncompiled)')
    print(f'load average now {os.getloadavg()[0]:.1f}; ratios: median of paired repetitions')
    paired, fastest = ratio(step['sd'], step['ce'])
    print(f'ratio sd/ce per-step: {paired} (target <= 1.20; {fastest})')
    paired, fastest = ratio(step['sd_eval_teacher'], step['ce'])
    print(f'ratio sd/ce per-step with the plain eval-mode teacher: {paired} ({fastest})')
    paired, fastest = ratio(run['sd'], run['ce'])
    print(f'ratio sd/ce whole-run: {paired} (target <= 1.27; {fastest})')

if __name__ == '__main__':
    main()
