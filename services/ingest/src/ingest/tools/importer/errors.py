"""Why an import stopped. Every message is one line a person can act on.

    ImportStopped           base: the import did not finish
    ├── FileRejected        the file cannot be imported at all (encoding, shape, missing columns, bad --map);
    │                       raised before anything is posted, so nothing is stored
    ├── ImportRefused       ingest refused the request for a reason a retry will not fix (API key, batch size)
    └── ImportInterrupted   ingest went away or kept failing, or the user pressed Ctrl-C, after some batches
                            were stored; the checkpoint keeps them, and the same command continues
"""

from __future__ import annotations

__all__ = ["FileRejected", "ImportInterrupted", "ImportRefused", "ImportStopped"]


class ImportStopped(Exception):
    """The import did not finish; ``str(exc)`` is one line."""


class FileRejected(ImportStopped):
    """The file as a whole cannot be imported; nothing was posted."""


class ImportRefused(ImportStopped):
    """Ingest refused the request (not a transient failure)."""


class ImportInterrupted(ImportStopped):
    """Stopped part-way; acknowledged batches are kept and recorded in the checkpoint."""
