"""`n3 weights` (being built)."""

COMMANDS: list = []
