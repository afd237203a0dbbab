"""`n3 eval` (being built)."""

COMMANDS: list = []
