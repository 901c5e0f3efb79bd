"""Datasets as uint8 NumPy arrays: IDX files, where copies come from, image folders, photos.

No torch here: the ``filter`` command and the web page use this package without it.

    >>> from convlens.data import load_dataset
    >>> ds = load_dataset("fashion-mnist")          # verified; falls back to the 10% sample
    >>> ds.train_images.shape, ds.train_images.dtype  # ((60000, 1, 28, 28), dtype('uint8'))
"""

from convlens.data.catalog import FASHION_MNIST_CLASSES, MNIST_CLASSES
from convlens.data.config import DataConfig
from convlens.data.dataset import Dataset
from convlens.data.images import load_image, prepare_image
from convlens.data.sources import load_dataset

__all__ = [
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "DataConfig",
    "Dataset",
    "load_dataset",
    "load_image",
    "prepare_image",
]
