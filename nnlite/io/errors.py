"""The exceptions a checkpoint reader raises, one class per kind of damage.

Every class derives from :class:`CheckpointError` (itself a ``ValueError``), so
``except nl.io.CheckpointError`` catches any bad file, while tests and tools can
tell a truncated download from a tampered header or a file meant for another
model.
"""

__all__ = ["CheckpointError", "NotACheckpointError", "HeaderError", "TruncatedError", "OffsetError",
           "OverlapError", "DTypeError", "ShapeError", "DuplicateKeyError", "ChecksumError",
           "VersionError", "MissingKeysError", "UnexpectedKeysError", "ShapeMismatchError"]


class CheckpointError(ValueError):
    """A file could not be read as an nnlite checkpoint or safetensors file."""


class NotACheckpointError(CheckpointError):
    """The file is something else (a pickle, a zip from ``torch.save``, text...)."""


class HeaderError(CheckpointError):
    """The safetensors header is oversized, not UTF-8 JSON, or not the expected structure."""


class TruncatedError(CheckpointError):
    """The file ends before the header or the tensor data it announces."""


class OffsetError(CheckpointError):
    """Tensor offsets are malformed, out of range, or leave bytes that belong to no tensor."""


class OverlapError(CheckpointError):
    """Two tensors claim the same bytes."""


class DTypeError(CheckpointError):
    """A tensor has a dtype string that is unknown or that nnlite cannot represent."""


class ShapeError(CheckpointError):
    """A tensor's shape is malformed or does not match the bytes its offsets cover."""


class DuplicateKeyError(CheckpointError):
    """A JSON object in the header names the same key twice."""


class ChecksumError(CheckpointError):
    """The stored SHA-256 does not match the file's contents (or is missing)."""


class VersionError(CheckpointError):
    """The file was written by a newer nnlite with a format this version cannot read."""


class MissingKeysError(CheckpointError):
    """The model (or optimizer...) expects state the checkpoint does not hold."""


class UnexpectedKeysError(CheckpointError):
    """The checkpoint holds state the model has no place for."""


class ShapeMismatchError(CheckpointError):
    """A stored tensor's shape differs from the model tensor it should fill."""
