"""`n3 denoise` (being built)."""

COMMANDS: list = []
