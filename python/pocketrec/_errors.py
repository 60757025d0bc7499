"""The exceptions pocketrec raises (defined in Python so that the I/O one can have two bases)."""

from __future__ import annotations

__all__ = ["PocketrecError", "PocketrecIOError"]


class PocketrecError(ValueError):
    """Bad input, a bad file or a failed check.

    The message is the library's, as the ``pocketrec`` command line prints it: it names the
    file (``<array>`` for an in-memory table), the tensor and, for a bad value, its row and
    column, e.g. ``<array>: tensor 'users' row 3, column 7: value NaN is not finite``.
    """


class PocketrecIOError(PocketrecError, OSError):
    """A file could not be opened, read or written (also an :class:`OSError`)."""
