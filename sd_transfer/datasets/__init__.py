"""Synthetic stand-ins for ImageNet, CIFAR-100 and PascalVOC in their real on-disk layouts."""
from .tiny import make_tiny_cifar100, make_tiny_imagenet, make_tiny_voc

__all__ = ['make_tiny_cifar100', 'make_tiny_imagenet', 'make_tiny_voc']
