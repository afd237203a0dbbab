"""``python -m n3cli ...`` is ``n3 ...`` (and ``torchrun ... -m n3cli denoise ...``)."""

from n3cli.cli.main import main

main()
