"""Synthetic stand-ins for ImageNet and PascalVOC in their real on-disk layouts."""
from .tiny import make_tiny_imagenet, make_tiny_voc

__all__ = ['make_tiny_imagenet', 'make_tiny_voc']
