"""Command-line interface (Click + rich). One module per sub-command."""
