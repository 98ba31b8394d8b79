"""The sampler side of per-sample seeding, with mmengine's own samplers (the runs that show the
augmentation itself are in test_resume.py and test_cluster.py)."""
import logging

from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.logging import MMLogger

from sd_transfer.datasets.sample_seeds import SampleKeySampler, seed_per_sample


def test_an_infinite_sampler_counts_its_passes():
    """An iteration-based schedule has one epoch: its passes over the data key the samples."""
    sampler = SampleKeySampler(range(5), dict(type='InfiniteSampler'), seed=3)
    assert isinstance(sampler.sampler, InfiniteSampler)
    stream = iter(sampler)
    keys = [next(stream) for _ in range(15)]
    assert [key.epoch for key in keys] == [0] * 5 + [1] * 5 + [2] * 5
    for p in range(3):
        assert sorted(keys[5 * p:5 * p + 5]) == [0, 1, 2, 3, 4]  # each index once per pass
    assert {key.seed for key in keys} == {3}
    more = next(iter(sampler))  # a new iterator continues the one stream (as InfiniteSampler)
    assert more.epoch == 3


class Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_sampler_without_known_passes_is_left_alone():
    cfg = Config(dict(train_dataloader=dict(sampler=dict(type='RepeatAugSampler'),
                                            dataset=dict(type='ImageNet'))))
    log = Messages()
    MMLogger.get_current_instance().addHandler(log)
    try:
        seed_per_sample(cfg)
    finally:
        MMLogger.get_current_instance().removeHandler(log)
    assert cfg.train_dataloader.sampler == dict(type='RepeatAugSampler')
    assert cfg.train_dataloader.dataset == dict(type='ImageNet')
    assert log.messages == ['train_dataloader.sampler RepeatAugSampler: augmentation stays '
                            'seeded per loader worker (keyed by sample only with DefaultSampler '
                            'or InfiniteSampler)']
