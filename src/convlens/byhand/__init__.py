"""Convolution and max pooling by hand: written out in NumPy, the kernel library, worked
arithmetic. (Named for what it is, not "ops": nothing here is a torch operation.)

Pure NumPy (no torch): these are the operations a Conv2D and a MaxPooling2D layer perform,
small enough to read, checked against ``torch.nn.functional`` in the tests.

    >>> from convlens.byhand import conv2d, max_pool2d, parse_kernel
    >>> image = np.zeros((28, 28))                          # (H, W)
    >>> conv2d(image, parse_kernel("vertical").values).shape
    (26, 26)
    >>> max_pool2d(np.zeros((26, 26))).shape
    (13, 13)
"""

from convlens.byhand.arithmetic import PixelArithmetic, explain_pixel
from convlens.byhand.conv import clamp_to_uint8, conv2d, max_pool2d
from convlens.byhand.kernels import (
    ALIASES,
    KERNELS,
    Kernel,
    KernelError,
    get_kernel,
    kernel_names,
    parse_kernel,
)

__all__ = [
    "ALIASES",
    "KERNELS",
    "Kernel",
    "KernelError",
    "PixelArithmetic",
    "clamp_to_uint8",
    "conv2d",
    "explain_pixel",
    "get_kernel",
    "kernel_names",
    "max_pool2d",
    "parse_kernel",
]
