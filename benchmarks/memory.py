"""Peak memory of one SD training step (teacher active) against one plain CE step.

Each side runs in a fresh subprocess, so that neither inherits the other's allocator pools: it
builds its model and optim wrapper, takes one warm-up step (momentum buffers, allocator pools),
then resets the kernel's high-water mark and measures one more step. On a GPU the figures are
the CUDA allocator's (its memory is what runs out there). The difference is compared with what SD should add: one copy of the
weights and BN buffers (the teacher) plus the teacher's activations, which inference mode frees
layer by layer instead of keeping them for backward.

    .venv/bin/python benchmarks/memory.py
    python benchmarks/memory.py --arch resnet50 --image-size 224 --amp --channels-last
"""
import json
import os
import re
import subprocess
import sys

import torch

from common import (RandomPacked, activate_teacher, build_model, load_cfg, parser,
                    print_machine)

MiB = 2 ** 20


def proc_status_kib(key):
    with open('/proc/self/status') as f:
        return int(re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M).group(1))


def inference_peak_bytes(teacher, inputs):
    """Largest set of activations alive at once in an inference forward of the teacher.

    Without autograd a layer's input dies after the layer, so what is alive is the current
    layer's input and output plus the inputs that the enclosing residual blocks keep for their
    shortcuts. The network input is the student's too, so it is not counted.
    """
    shortcuts, peak = {}, 0

    def enter_block(module, args):
        shortcuts[args[0].data_ptr()] = args[0].nbytes

    def leave_block(module, args, output):
        shortcuts.pop(args[0].data_ptr(), None)

    def leaf(module, args, output):
        nonlocal peak
        live = {**shortcuts, args[0].data_ptr(): args[0].nbytes, output.data_ptr(): output.nbytes}
        live.pop(inputs.data_ptr(), None)
        peak = max(peak, sum(live.values()))

    handles = []
    for m in teacher.modules():
        if hasattr(m, 'downsample'):  # ResNet's BasicBlock and Bottleneck
            handles += [m.register_forward_pre_hook(enter_block),
                        m.register_forward_hook(leave_block)]
        elif not list(m.children()):
            handles.append(m.register_forward_hook(leaf))
    with torch.inference_mode():
        teacher(inputs, mode='tensor')
    for h in handles:
        h.remove()
    return peak


def measure(args):
    """One side, in this (fresh) process: print its figures as JSON."""
    model, optim_wrapper = build_model(load_cfg(args.side, args), args)
    batches = RandomPacked(args.batch_size * 2, args.image_size).batches(2, args.batch_size)
    cuda = torch.device(args.device).type == 'cuda'
    result = {}

    def peaks(suffix):
        result[f'rss_{suffix}'] = proc_status_kib('VmHWM') * 1024
        if cuda:
            torch.cuda.synchronize()
            result[f'cuda_{suffix}'] = torch.cuda.max_memory_allocated()

    if args.side == 'sd':
        teacher = activate_teacher(model)
        result['teacher_weights'] = sum(t.nbytes for t in teacher.state_dict().values())
        teacher.register_forward_pre_hook(lambda *_: peaks('before_teacher'))
        teacher.register_forward_hook(lambda *_: peaks('through_teacher'))
    model.train_step(batches[0], optim_wrapper)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        result['cuda_before'] = torch.cuda.memory_allocated()
    result['rss_before'] = proc_status_kib('VmRSS') * 1024
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM, the peak resident set, to the current one
    model.train_step(batches[1], optim_wrapper)
    peaks('peak')
    if args.side == 'sd':
        with torch.autocast(torch.device(args.device).type, torch.bfloat16, enabled=args.amp):
            inputs = model.data_preprocessor(batches[1], True)['inputs']
            result['teacher_activations'] = inference_peak_bytes(teacher, inputs)
    print(json.dumps(result))


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--side', choices=('ce', 'sd'), help='(internal) measure one side and exit')
    args = p.parse_args()
    if args.side:
        return measure(args)
    print_machine(args.device)
    print(f'{args.arch}, {args.image_size} px, batch {args.batch_size}, {args.device}, '
          f'amp {args.amp}, channels_last {args.channels_last}')
    # A fixed mmap threshold makes glibc return every freed tensor to the OS, so RSS follows live
    # memory; its default, adaptive threshold keeps freed blocks depending on the history.
    env = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': str(128 * 1024)}
    res = {}
    for side in ('ce', 'sd'):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--side', side],
                             check=True, capture_output=True, text=True, env=env).stdout
        res[side] = json.loads(out.strip().splitlines()[-1])
    ce, sd = res['ce'], res['sd']
    key = 'cuda' if 'cuda_peak' in ce else 'rss'
    name = dict(cuda='CUDA allocated', rss='RSS')[key]
    for side, r in res.items():
        print(f'{side}: {name} before the step {r[f"{key}_before"] / MiB:.1f} MiB, '
              f'peak during it {r[f"{key}_peak"] / MiB:.1f} MiB')
    upto, through = sd[f'{key}_before_teacher'], sd[f'{key}_through_teacher']
    print(f'sd: {name} peak of the step up to the teacher forward {upto / MiB:.1f} MiB, through '
          f'it {through / MiB:.1f} MiB: the teacher raised it by {(through - upto) / MiB:.1f} MiB')
    before = sd[f'{key}_before'] - ce[f'{key}_before']
    diff = sd[f'{key}_peak'] - ce[f'{key}_peak']
    print(f'sd - ce: before the step {before / MiB:.1f} MiB, peak {diff / MiB:.1f} MiB')
    weights, acts = sd['teacher_weights'], sd['teacher_activations']
    print(f'analytic: teacher weights + BN buffers {weights / MiB:.1f} MiB; teacher activations '
          f'{acts / MiB:.1f} MiB (inference mode: the most alive at once)')
    print(f'ratio sd/ce peak {name}: {sd[f"{key}_peak"] / ce[f"{key}_peak"]:.3f} '
          f'(difference {diff / MiB:.1f} MiB; analytic {weights / MiB:.1f} MiB weights + '
          f'0..{acts / MiB:.1f} MiB activations)')

if __name__ == '__main__':
    main()
