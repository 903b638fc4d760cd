"""Put a taxonomy in force (``PUT /v1/taxonomy``) and list the versions put through the API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from classification.domain.taxonomy import Taxonomy, parse_taxonomy
from classification.service.live import LiveState
from classification.store.repository import TaxonomyRepository
from feedbackloop.db import UnitOfWorkFactory, as_utc

__all__ = ["TaxonomyVersionTaken", "put_taxonomy", "taxonomy_versions"]


class TaxonomyVersionTaken(ValueError):
    """A different taxonomy was already put in force under this ``version``."""


async def put_taxonomy(units: UnitOfWorkFactory, live: LiveState, document: Any, changed_by: str) -> Taxonomy:
    """Validate ``document`` and put it in force: stored as a new version (who, when), then the running classifier
    switches to it. A document without ``version`` gets ``api-<n>``.

    :class:`TaxonomyError` (every problem named) or :class:`TaxonomyVersionTaken`: nothing changes, the old
    taxonomy stays in force. Putting the very document already stored under its version again changes nothing.
    """
    async with units() as uow:
        repo = TaxonomyRepository(uow.session)
        if isinstance(document, Mapping) and not document.get("version"):
            document = {**document, "version": f"api-{len(await repo.history()) + 1}"}
        taxonomy = parse_taxonomy(document)
        stored = await repo.by_version(taxonomy.version)
        if stored is not None and stored.document == document:
            return live.classifier.taxonomy if live.classifier.taxonomy.version == taxonomy.version else taxonomy
        if stored is not None or taxonomy.version == live.classifier.taxonomy.version:
            raise TaxonomyVersionTaken(f"version {taxonomy.version!r} is already in use; give the changed taxonomy "
                                       "a new `version`")
        clean = dict(document)

        async def persist() -> None:
            await repo.add(taxonomy.version, clean, changed_by, datetime.now(UTC))
            await uow.commit()

        await live.swap(lambda c: c.with_taxonomy(taxonomy), persist)
    return taxonomy


async def taxonomy_versions(units: UnitOfWorkFactory) -> list[dict[str, Any]]:
    """Every version put through the API, newest first: ``{seq, version, changed_by, changed_at}``."""
    async with units() as uow:
        return [{"seq": v.seq, "version": v.version, "changed_by": v.changed_by, "changed_at": as_utc(v.changed_at)}
                for v in await TaxonomyRepository(uow.session).history()]
