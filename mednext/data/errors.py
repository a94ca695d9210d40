"""Exceptions of the data pipeline; each message says what was expected, what was found, and where."""

from __future__ import annotations


class DataError(RuntimeError):
    """Base class for dataset download/conversion failures."""


class UnknownDatasetError(KeyError):
    """A dataset name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DownloadError(DataError):
    """A transfer failed or stopped early (the partial file is kept for resuming)."""


class ChecksumError(DataError):
    """A downloaded or hand-placed file does not match its published or recorded checksum."""


class CredentialsMissingError(DataError):
    """A source needs credentials from an environment variable that is not set."""


class ConversionError(DataError):
    """A case (or the dataset as a whole) failed validation while converting to nnU-Net raw.

    ``path``: the offending file, where one is to blame (e.g. the image whose grid differs from its label).
    """

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = path
