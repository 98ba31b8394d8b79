"""Augmentation keyed by (run seed, pass over the data, dataset index), not by loader worker.

mmengine seeds loader worker ``w`` of rank ``r`` once, with ``seed + r * num_workers + w``: which
augmentation an image gets depends on the number of workers and on the worker it lands on;
workers re-created every epoch (``persistent_workers`` off) replay the same random numbers every
epoch, and the fresh workers of a resumed run replay those of its first epoch. Here each sample's
pipeline runs with numpy, ``random`` and torch seeded from its key alone:

- :class:`SampleKeySampler` wraps the loader's sampler and yields :class:`SampleKey` indices, an
  ``int`` that also carries the run's seed and the pass: it pickles into the workers and still
  indexes where mmdet's batch samplers call ``dataset.get_data_info(idx)``;
- :class:`SeedPerSampleDataset` wraps the dataset and seeds before each sample's pipeline (a
  broken image skipped with ``--skip-bad-images`` makes mmengine draw another index from numpy:
  seeded too);
- :func:`seed_per_sample` wraps a config's train loader so; the CLIs do it for every run.

The pass is the epoch (mmengine's ``DistSamplerSeedHook`` and its iteration loop's restart call
``set_epoch``), or for an ``InfiniteSampler`` how many times its one stream went through the
data. So the same sample gets the same augmentation for any number of workers, persistent or
not, on any number of ranks that share the global batch order, and a resume continues the
sequence; every pass gets fresh ones. Evaluation loaders are left alone: their pipelines draw
nothing.
"""
import hashlib
import random
import struct
from contextlib import contextmanager

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import sync_random_seed
from mmengine.logging import print_log
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler, get_worker_info

# samplers whose passes are known: DefaultSampler's is its epoch, InfiniteSampler's is counted
KNOWN_SAMPLERS = ('DefaultSampler', 'InfiniteSampler')


class SampleKey(int):
    """A dataset index that also says which run (``seed``) and which pass (``epoch``) drew it."""

    def __new__(cls, index: int, seed: int, epoch: int):
        key = super().__new__(cls, index)
        key.seed, key.epoch = seed, epoch
        return key

    def __reduce__(self):
        return SampleKey, (int(self), self.seed, self.epoch)


@DATA_SAMPLERS.register_module()
class SampleKeySampler(Sampler):
    """The indices of ``sampler`` (a sampler config, built as mmengine builds it), as
    :class:`SampleKey` s."""

    def __init__(self, dataset, sampler: dict, seed=None):
        self.seed = sync_random_seed() if seed is None else seed  # as mmengine's samplers do
        self.sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset,
                                                                      seed=self.seed))
        self.dataset = dataset  # mmdet's batch samplers read it
        self.epoch = 0
        self.drawn = 0  # how many indices this rank took from an infinite sampler's stream

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        if not isinstance(self.sampler, InfiniteSampler):
            for index in self.sampler:
                yield SampleKey(index, self.seed, self.epoch)
            return
        sampler = self.sampler
        for index in sampler:  # one endless stream: ranks take every world_size-th index of it
            position = self.drawn * sampler.world_size + sampler.rank
            self.drawn += 1
            yield SampleKey(index, self.seed, position // sampler.size)

    def __len__(self) -> int:
        return len(self.sampler)


@contextmanager
def seeded(key: SampleKey):
    """numpy, ``random`` and torch (CPU) seeded from a hash of ``key`` inside. In the main
    process (no loader workers) their states are restored after: the pipeline then draws nothing
    from the training's own streams, as with workers."""
    main = get_worker_info() is None
    if main:
        saved = random.getstate(), np.random.get_state(), torch.default_generator.get_state()
    digest = hashlib.blake2b(struct.pack('<3Q', key.seed, key.epoch, int(key)), digest_size=8)
    seed = int.from_bytes(digest.digest(), 'little')
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)  # numpy's global generator takes 32 bits
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if main:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.default_generator.set_state(saved[2])


@DATASETS.register_module()
class SeedPerSampleDataset(Dataset):
    """``dataset`` (a config, built in the run's scope) whose samples are read with
    :class:`SampleKey` s, each one's pipeline under :func:`seeded`."""

    def __init__(self, dataset: dict):
        self.dataset = DATASETS.build(dataset)

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(int(idx))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey):
        with seeded(key):
            return self.dataset[int(key)]


def seed_per_sample(cfg) -> None:
    """Wrap ``cfg.train_dataloader``'s sampler and dataset so that its augmentation is keyed by
    sample; a sampler whose passes are unknown is left as it is, with a warning."""
    loader = cfg.train_dataloader
    kind = loader.sampler.get('type')
    if kind not in KNOWN_SAMPLERS:
        print_log(f'train_dataloader.sampler {kind}: augmentation stays seeded per loader '
                  f'worker (keyed by sample only with {" or ".join(KNOWN_SAMPLERS)})',
                  logger='current', level=30)
        return
    loader.sampler = dict(type='SampleKeySampler', sampler=loader.sampler)
    loader.dataset = dict(type='SeedPerSampleDataset', dataset=loader.dataset)
