"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aggregation.store.repository import ReadQueries


def _queries(request: Request) -> ReadQueries:
    return ReadQueries(request.app.state.runtime.read_engine)


QueriesDep = Annotated[ReadQueries, Depends(_queries)]
