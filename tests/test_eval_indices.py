"""--skip-bad-images on several ranks: the first process decides which val/test images are left
out and every rank evaluates that list (mmengine gathers the ranks' results by position, so two
lists would count some images twice)."""
import json
import os.path as osp
import shutil

import pytest
import torch.multiprocessing as mp
from conftest import REPO

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

CONFIG = osp.join(REPO, 'configs/pretrain/tiny/resnet18_cyclic_tiny.py')


def _rank(rank, root, out, init_file, flaky):
    """One rank of a 2-process gloo group, as a launcher starts it: exclude (as start_run
    does), then build the val set (as the Runner does, once the group exists)."""
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import DATASETS, init_default_scope

    from sd_transfer.cli import rebase_data_root
    from sd_transfer.datasets import loading
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    if rank == 1:  # a transient read error on this rank only (an NFS hiccup, say)
        real = loading._file_problem
        loading._file_problem = lambda path: 'unreadable (Input/output error)' if path == flaky \
            else real(path)
    cfg = Config.fromfile(CONFIG)
    rebase_data_root(cfg, root, CONFIG)
    loading.exclude_bad_eval_images(cfg, osp.join(out, f'skipped{rank}.txt'), ('val_dataloader',))
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    with open(osp.join(out, f'rank{rank}.json'), 'w') as f:
        json.dump(paths, f)
    dist.destroy_process_group()


def test_first_process_decides_the_eval_images(tiny_imagenet, tmp_path):
    root = tmp_path / 'imagenet'
    shutil.copytree(tiny_imagenet, root)
    val = [str(root / 'val' / line.split()[0])
           for line in (root / 'meta' / 'val.txt').read_text().splitlines()]
    open(val[3], 'wb').close()  # broken for everyone
    mp.spawn(_rank, args=(str(root), str(tmp_path), str(tmp_path / 'pg'), val[7]), nprocs=2)
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] == val[:3] + val[4:]
