"""`n3 doctor` (being built)."""

COMMANDS: list = []
