"""n3cli: image restoration with Neural Nearest Neighbors Networks (N3Net).

Usable as a library: see :mod:`n3cli.models` (architectures), :mod:`n3cli.engine`
(running a model on images of any size), :mod:`n3cli.eval`, :mod:`n3cli.train`.
"""

__version__ = "0.1.0"
