"""Born-again networks: K ordinary runs, each generation taught by the previous one's final
checkpoint, resumable generation by generation.

Generation k trains in ``WORK_DIR/gen<k>`` with the seed ``seed + k - 1``. A generation whose
final backbone exists is done and skipped; one that was interrupted is resumed from its last
checkpoint. ``WORK_DIR/summary.json`` adds up what the generations cost (images, teacher
forwards, device-hours), for comparison with one SD run.
"""
import copy
import json
import os.path as osp
from typing import Optional

from mmengine.logging import print_log

from .cli import load_config
from .distill.file_teacher import check_fixed_teacher_config, teacher_model
from .errors import UserError
from .io import atomic_write_json, safe_torch_load
from .run_dir import default_work_dir, finished_pretraining


def final_checkpoint(gen_dir: str, final: dict) -> str:
    """The full checkpoint of the generation's last iteration (``last_checkpoint`` names it).

    The final backbone is exported just before the last checkpoint is saved: a generation killed
    between the two has a final backbone but an older last checkpoint, which must not teach.
    """
    last = osp.join(gen_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise UserError(f'{gen_dir}: no last_checkpoint; the generation did not save one')
    with open(last) as f:
        path = f.read().strip()
    saved = (safe_torch_load(path, map_location='meta').get('meta') or {}).get('iter')
    if saved != final.get('iter'):
        raise UserError(f'{path}: saved at iteration {saved}, but generation {gen_dir} ended at '
                        f"iteration {final.get('iter')}; resume it to save its final checkpoint "
                        f'(python tools/pretrain.py CONFIG --work-dir {gen_dir} --resume)')
    return path


def check_generations(args) -> Optional[int]:
    """What generation 2 would check, before generation 1 trains for days: the config distils
    from a fixed teacher, and its resolved model builds as one. Returns the base seed."""
    probe = copy.copy(args)
    probe.resume = None
    cfg = load_config(probe)
    check_fixed_teacher_config(cfg, args.config)
    teacher_model(cfg)
    return args.seed if args.seed is not None else (cfg.get('randomness') or {}).get('seed')


def run_generations(args, pretrain) -> dict:
    """Train generations 1..``args.generations`` with ``pretrain(args, cfg_updates)``.

    Generation k gets the seed ``seed + k - 1``: each student starts from other initial weights
    than its teacher did (with one seed for all, generation k+1 would start where k started).
    """
    root = args.work_dir or default_work_dir(args.config, args.seed)
    base_seed = check_generations(args)
    generations = []
    for k in range(1, args.generations + 1):
        gen_dir = osp.join(root, f'gen{k}')
        seed = None if base_seed is None else base_seed + k - 1
        done = finished_pretraining(gen_dir)
        if done is None:
            gen_args = copy.copy(args)
            gen_args.work_dir = gen_dir
            gen_args.seed = seed
            gen_args.teacher = final_checkpoint(
                generations[-1]['work_dir'], generations[-1]['final']) if k > 1 else None
            gen_args.teacher_config = None  # the same architecture: the config itself
            gen_args.resume = 'auto' if osp.isdir(gen_dir) else None
            print_log(f'born-again: generation {k} of {args.generations} in {gen_dir}, seed '
                      f'{seed}' + (f', taught by {gen_args.teacher}' if gen_args.teacher else ''),
                      logger='current')
            pretrain(gen_args, dict(generation=k))
            done = finished_pretraining(gen_dir)
            if done is None:  # rank 0 exported it: other nodes see it only on a shared folder
                raise UserError(f'{gen_dir}: generation {k} finished, but its backbone.pth is not '
                                'visible here; born-again needs a work dir all nodes share')
        else:
            print_log(f'born-again: generation {k} already finished in {gen_dir}',
                      logger='current')
        generations.append(dict(generation=k, work_dir=gen_dir, seed=done.get('seed'),
                                val=done.get('val'), cost=done.get('cost'), final=done))
    costs = [g['cost'] or {} for g in generations]
    total = {key: sum(c.get(key, 0) for c in costs)
             for key in ('images', 'teacher_images', 'seconds', 'device_hours')}
    for generation in generations:
        del generation['final']
    summary = dict(config=osp.abspath(args.config), generations=generations, total_cost=total)
    atomic_write_json(summary, osp.join(root, 'summary.json'))
    print_log('born-again: ' + json.dumps(total), logger='current')
    return summary
