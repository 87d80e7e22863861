"""Errors the user can act on: each names the file and, where relevant, the column."""
from __future__ import annotations


class OcvoError(Exception):
    """Base class: the CLI prints these as one clear line and exits with status 2."""


class InputError(OcvoError):
    """An input file is missing, unreadable, or lacks or misuses a column."""

    def __init__(self, path, message: str, column: str | None = None):
        self.path = str(path)
        self.column = column
        where = f"{self.path}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


class PublishError(OcvoError):
    """An ingest output directory cannot be published; nothing was changed."""


class ServiceError(OcvoError):
    """The private PostgreSQL/DaCHS instance could not be set up, started or stopped."""


class OutputError(OcvoError):
    """The ingest output directory cannot be used; checked before any work, nothing changed."""


class CatalogueError(OcvoError):
    """The inputs would give no usable catalogue (e.g. 0 clusters); nothing was written."""
