"""One exception hierarchy for the hub.

Every error carries structured fields (feed, batch, row, column) so that callers can log,
quarantine or display them without parsing messages, and every message says what was
found, what was expected and, where it helps, what to do next.
"""

from __future__ import annotations

from typing import Any


class SharehubError(Exception):
    """Base of every error the hub raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        feed: str | None = None,
        batch: str | None = None,
        row: int | None = None,
        column: str | None = None,
        **details: Any,
    ) -> None:
        self.message = message
        self.feed = feed
        self.batch = batch
        self.row = row
        self.column = column
        self.details = details
        super().__init__(self.__str__())

    def where(self) -> str:
        """``feed=… batch=… row=… column=…`` for the fields that are known."""
        parts = [
            f"{key}={value}"
            for key, value in (
                ("feed", self.feed),
                ("batch", self.batch),
                ("row", self.row),
                ("column", self.column),
            )
            if value is not None
        ]
        return " ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"[{where}] {self.message}" if where else self.message


class ConfigError(SharehubError):
    """A setting or an argument is invalid."""


class DeliveryRejected(SharehubError):
    """A whole delivery is refused: nothing of it reaches staging or shared."""


class ManifestError(DeliveryRejected):
    """The manifest is missing, malformed, or disagrees with the files."""


class ContractViolation(SharehubError):
    """Data or a schema disagrees with its written contract."""


class SourceUnavailable(SharehubError):
    """A source (e.g. the health front-end database) could not be reached."""


class LinkageError(SharehubError):
    """The linkage model could not be trained, loaded or applied."""


class PublishAborted(SharehubError):
    """A candidate version failed validation; the previous version stays published."""


class NotFound(SharehubError):
    """A table, batch, review item or file asked for does not exist."""
