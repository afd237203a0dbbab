"""The project's own error types.

Every failure a user can cause ends as an :class:`N3Error` whose message is one line
saying what is wrong and what to do; the CLI prints it without a traceback.
"""

from __future__ import annotations


class N3Error(Exception):
    """A failure with a one-line, user-facing explanation.

    ``exit_code`` follows the CLI convention: 2 for usage errors (bad options, unknown
    model), 1 for a failed item (unreadable image, unwritable output).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")

    def one_line(self) -> str:
        return self.message if not self.hint else f"{self.message}: {self.hint}"


class UsageError(N3Error):
    """The command line asks for something impossible (exit code 2)."""

    exit_code = 2


class ImageReadError(N3Error):
    """An input file could not be decoded as an image."""


class ImageWriteError(N3Error):
    """An output file could not be written."""


class ModelNotFoundError(UsageError):
    """Unknown model name, or known model whose weights are not installed."""


class WeightsError(N3Error):
    """A weights file is corrupt, fails its checksum or does not fit the architecture."""


class CheckpointError(N3Error):
    """A training checkpoint is corrupt or belongs to another configuration."""
