"""What mmengine/mmpretrain cost per training step over a bare PyTorch loop.

mmengine side: ``model.train_step(data_batch, optim_wrapper)``, which is what the Runner calls
each iteration, with the cyclic baseline's model, data preprocessor and optim wrapper and a batch
as PackInputs + pseudo_collate deliver it. Bare side: torchvision's ResNet with the same weights,
torch.optim.SGD with the same settings, the same normalisation and CE, on the same images already
stacked in memory (as default_collate delivers them), the way torchvision's reference loop does it.

    .venv/bin/python benchmarks/framework_overhead.py           # CPU: ResNet-18, 64 px, batch 32
    python benchmarks/framework_overhead.py --arch resnet50 --image-size 224 --amp --channels-last
"""
import os

import torch
import torch.nn.functional as F
import torchvision

from common import (NUM_CLASSES, RandomPacked, build_model, interleaved, load_cfg,
                    parser, print_machine, ratio, report)


def bare_copy(model, cfg, args):
    """torchvision's ResNet with the mmpretrain model's weights, and an identical SGD."""
    net = getattr(torchvision.models, args.arch)(num_classes=NUM_CLASSES)
    # mmpretrain's ResNet uses torchvision's parameter names; only the prefixes differ.
    net.load_state_dict({k.replace('backbone.', '', 1).replace('head.fc.', 'fc.', 1): v
                         for k, v in model.state_dict().items()})
    net.to(args.device).train()
    if args.channels_last:
        net.to(memory_format=torch.channels_last)
    settings = {k: v for k, v in cfg.optim_wrapper.optimizer.items()
                if k not in ('type', '_scope_')}
    return net, torch.optim.SGD(net.parameters(), **settings)


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=1, help='train steps per timed repetition')
    p.add_argument('--reps', type=int, default=21, help='repetitions of each side')
    args = p.parse_args()
    if args.quick:
        args.steps, args.reps = 1, 1
    print_machine(args.device)
    print(f'{args.arch}, {args.image_size} px, batch {args.batch_size}, {args.device}, '
          f'amp {args.amp}, channels_last {args.channels_last}')
    cfg = load_cfg('ce', args)
    model, optim_wrapper = build_model(cfg, args)
    net, optimizer = bare_copy(model, cfg, args)
    print(f'mmengine optim wrapper: {type(optim_wrapper).__name__}'
          + (f', loss scaler {optim_wrapper.loss_scaler.is_enabled()}'
             if hasattr(optim_wrapper, 'loss_scaler') else ''))
    preprocessor = model.data_preprocessor
    mean, std = preprocessor.mean.view(1, 3, 1, 1), preprocessor.std.view(1, 3, 1, 1)
    device = torch.device(args.device)
    data = RandomPacked(args.batch_size * args.steps, args.image_size)

    def mmengine_side():
        batches = data.batches(args.steps, args.batch_size)

        def run():
            for batch in batches:
                model.train_step(batch, optim_wrapper)
        return run

    def bare_side():
        batches = [(data.images[k * args.batch_size:(k + 1) * args.batch_size],
                    data.labels[k * args.batch_size:(k + 1) * args.batch_size])
                   for k in range(args.steps)]

        def run():
            for images, labels in batches:
                x = (images.to(device, non_blocking=True).float() - mean) / std
                with torch.autocast(device.type, torch.bfloat16, enabled=args.amp):
                    loss = F.cross_entropy(net(x), labels.to(device, non_blocking=True))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        return run

    times = interleaved(dict(mmengine=mmengine_side, bare=bare_side), args.reps, args.device)
    print(f'per repetition of {args.steps} steps:')
    items = args.steps * args.batch_size
    for name, t in times.items():
        report(f'  {name}', t, items)
    print(f'load average now {os.getloadavg()[0]:.1f}; ratio: median of paired repetitions')
    paired, fastest = ratio(times['mmengine'], times['bare'])
    print(f'ratio mmengine/bare per-step: {paired} (target <= 1.05; {fastest})')

if __name__ == '__main__':
    main()
