"""``Authorization: Bearer <api key>`` with scopes, verified locally against the key file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feedbackloop.http.problems import ProblemError
from feedbackloop.keys import ApiKey, InvalidKey, KeyStore, Scope

__all__ = ["AdminKey", "ReadKey", "WriteKey", "require"]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer flk_…`")


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> ApiKey:
        if credentials is None:
            raise ProblemError(
                "Send an API key as `Authorization: Bearer <key>`.",
                status=401,
                title="Unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        store: KeyStore = request.app.state.keys
        try:
            key = store.verify(credentials.credentials)
        except InvalidKey as exc:
            raise ProblemError(
                f"{exc}.",
                status=401,
                title="Unauthorized",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc
        if not key.allows(scope):
            raise ProblemError(f"This API key lacks the `{scope}` scope.", status=403, title="Forbidden")
        return key

    return check


ReadKey = Annotated[ApiKey, Depends(require("read"))]
WriteKey = Annotated[ApiKey, Depends(require("write"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
