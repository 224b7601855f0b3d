"""Exceptions of the perception core. Each message says what to fix."""

from __future__ import annotations


class PerovssError(Exception):
    """Base class of every error perovss raises on purpose."""


class InvalidInputError(PerovssError, ValueError):
    """A request or input is malformed (bad name, wrong shape/dtype, size mismatch, too large)."""


class UnknownConceptError(PerovssError, KeyError):
    """A concept name that is not taught."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown concept"


class CheckpointError(PerovssError, RuntimeError):
    """A model checkpoint or engine is missing, corrupt or does not match."""


class ConceptStoreError(PerovssError, RuntimeError):
    """The concept store cannot be read or written, or holds a concept of another model."""
