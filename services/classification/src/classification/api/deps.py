"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from classification.service import Classifier


def _classifier(request: Request) -> Classifier:
    return request.app.state.classifier  # type: ignore[no-any-return]


ClassifierDep = Annotated[Classifier, Depends(_classifier)]
