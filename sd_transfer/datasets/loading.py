"""Image loading that names a corrupt or truncated file instead of crashing (or silently training).

mmcv's ``LoadImageFromFile`` fails on an undecodable file with a bare assertion deep inside a
dataloader worker, and OpenCV decodes a *truncated* JPEG without any error, filling the missing
part with grey. The CLIs swap in this subclass for every pipeline (same arguments).
"""
import mmcv
from mmengine import fileio
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS
from mmcv.transforms import LoadImageFromFile

from ..errors import UserError

JPEG_END = b'\xff\xd9'


def image_problem(data: bytes):
    """Why ``data`` is not a complete image, or ``None``. Cheap: the bytes are read anyway."""
    if not data:
        return 'empty file'
    if data[:3] == b'\xff\xd8\xff' and JPEG_END not in data[-16:]:
        return 'truncated JPEG (no end-of-image marker)'
    return None


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises a :class:`UserError` naming the bad file.

    With ``skip_bad=True`` the bad image is logged and skipped instead (the dataset then draws
    another sample, as mmengine does for a pipeline that returns ``None``).
    """

    def __init__(self, *args, skip_bad: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_bad = skip_bad
        self.skipped = 0

    def transform(self, results: dict):
        filename = results['img_path']
        try:
            data = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            return self._bad(filename, 'file not found')
        problem = image_problem(data)
        img = None
        if problem is None:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
            if img is None:
                problem = 'cannot be decoded as an image'
        if problem is not None:
            return self._bad(filename, problem)
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _bad(self, filename, problem):
        if not self.skip_bad:
            raise UserError(f'{filename}: {problem} (use --skip-bad-images to skip such files)')
        self.skipped += 1
        print_log(f'skipping {filename}: {problem} ({self.skipped} skipped by this worker)',
                  logger='current', level=30)
        return None
