"""Dashboard sessions: the cookie holds a random id, the store its SHA-256, the key id and the expiry.

A stolen database or backup gives no usable cookie (only hashes), the cookie gives no API key, and a session
ends when it expires, when its browser signs out (the row is deleted), or when its API key is revoked (checked
by the caller against the key file on every page).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aggregation.store.models import DashboardSession
from feedbackloop.db import UnitOfWorkFactory

__all__ = ["DashboardSessions"]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DashboardSessions:
    """Opens, looks up and closes sessions; each method is one transaction of its own."""

    def __init__(self, uow: UnitOfWorkFactory, read_engine: AsyncEngine) -> None:
        self.uow = uow
        self.read_engine = read_engine

    async def open(self, key_id: str, lasting: timedelta) -> str:
        """A new session for the API key ``key_id``; returns the cookie's value (256 random bits). Sessions
        already expired are deleted in the same transaction, so the table holds live ones only."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self.uow() as uow:
            await uow.session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
            await uow.session.execute(insert(DashboardSession).values(
                token_hash=_hash(token), key_id=key_id, created_at=now, expires_at=now + lasting))
            await uow.commit()
        return token

    async def key_of(self, token: str) -> str | None:
        """The API key id of the live session ``token``; None when unknown, signed out or expired."""
        if not token or len(token) > 128:
            return None
        async with AsyncSession(self.read_engine) as session:
            row = (await session.execute(select(DashboardSession.key_id, DashboardSession.expires_at).where(
                DashboardSession.token_hash == _hash(token)))).first()
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        return str(row.key_id) if expires > datetime.now(UTC) else None

    async def close(self, token: str) -> None:
        """Sign out: the session is gone, whoever holds its cookie."""
        async with self.uow() as uow:
            await uow.session.execute(delete(DashboardSession).where(DashboardSession.token_hash == _hash(token)))
            await uow.commit()
