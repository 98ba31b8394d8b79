"""CIFAR read from disk only: mmpretrain's dataset, minus the download and the md5 gate.

mmpretrain's ``CIFAR10``/``CIFAR100`` download the archive when the files fail an md5 check, so
on a cluster without internet a wrong ``data_root`` hangs or fails deep inside the loader, and
any re-pickled copy of the data (or our generated stand-in) is refused. The CLIs swap in these
subclasses (and check the files exist before the run): they never download, and only log when
the files differ from the official release.
"""
import os.path as osp

from mmengine.logging import print_log
from mmpretrain.datasets import CIFAR10, CIFAR100
from mmpretrain.datasets.utils import check_md5
from mmpretrain.registry import DATASETS


class _LocalCIFAR:

    def __init__(self, *args, download: bool = False, **kwargs):
        self._official = None
        super().__init__(*args, download=False, **kwargs)

    def files(self):
        """``(path, official md5)`` of the data files of both splits."""
        folder = osp.join(self.data_prefix['root'], self.base_folder)
        return [(osp.join(folder, name), md5) for name, md5 in self.train_list + self.test_list]

    def _check_integrity(self):
        files = self.files()
        if not all(osp.isfile(path) for path, _ in files):
            return False
        if self._official is None:
            self._official = all(check_md5(path, md5) for path, md5 in files)
            if not self._official:
                print_log(f'{osp.dirname(files[0][0])}: not byte-identical to the official '
                          'release (md5); using the files as they are', logger='current')
        return True


@DATASETS.register_module()
class LocalCIFAR10(_LocalCIFAR, CIFAR10):
    """mmpretrain's ``CIFAR10`` without download or md5 gate."""


@DATASETS.register_module()
class LocalCIFAR100(_LocalCIFAR, CIFAR100):
    """mmpretrain's ``CIFAR100`` without download or md5 gate."""
