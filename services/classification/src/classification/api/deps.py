"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from classification.service import Classifier, LiveState
from feedbackloop.db import UnitOfWorkFactory


def _live(request: Request) -> LiveState:
    return request.app.state.live  # type: ignore[no-any-return]


def _classifier(request: Request) -> Classifier:
    return _live(request).classifier


def _units(request: Request) -> UnitOfWorkFactory:
    return request.app.state.runtime.uow  # type: ignore[no-any-return]


LiveDep = Annotated[LiveState, Depends(_live)]
ClassifierDep = Annotated[Classifier, Depends(_classifier)]
UnitsDep = Annotated[UnitOfWorkFactory, Depends(_units)]
