"""`n3 train` (being built)."""

COMMANDS: list = []
