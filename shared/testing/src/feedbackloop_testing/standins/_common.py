"""What every vendor router shares: answering in the vendor's error shape, reading a JSON body, lost answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins.state import State


class VendorError(Exception):
    """Answer ``response`` as it is (the vendor's own error shape); raised from anywhere in a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def state_of(request: Request) -> State:
    state: State = request.app.state.standins
    return state


async def json_body(request: Request, bad: Response) -> Any:
    """The request's JSON body; ``bad`` is answered when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise VendorError(bad) from None


def lost_answer(request: Request, vendor: str) -> Response | None:
    """A 502 when a ``lose_answer`` fault is pending for this write: the write is done, its answer lost."""
    fault = state_of(request).take_fault(vendor, ("lose_answer",), request.method, request.url.path)
    if fault is None:
        return None
    return JSONResponse({"message": "Bad Gateway (stand-in: the answer was lost)"}, status_code=502)
