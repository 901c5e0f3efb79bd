"""Models from other frameworks, in and out: Keras (read without TensorFlow), PyTorch, ONNX.

A floor above ``models`` and ``runs`` (it builds networks and writes run folders) and below
the CLI and the web lab, which call :func:`import_model`. Each importer translates a
foreign model into the lesson's layer vocabulary plus weights in PyTorch's layout
(:class:`ImportedModel`); ``import_model`` turns that into an ordinary run folder.
"""

from convlens.interop.imported import ImportedModel, to_network
from convlens.interop.importing import import_model, read_model

__all__ = ["ImportedModel", "import_model", "read_model", "to_network"]
