"""The stand-ins' one FastAPI app: the vendor routers under ``/github``, ``/jira``, ``/linear``, ``/zendesk``,
``/intercom``, and the operator side under ``/_standin`` (no auth):

    GET  /_standin                                   the base URLs and env variables to point clients at it
    GET  /_standin/{github|jira|linear}/issues       what each tracker holds
    GET  /_standin/zendesk/tickets/{id}/comments     POST /_standin/zendesk/tickets {"id", "subject"?}
    GET  /_standin/intercom/conversations/{id}       POST /_standin/intercom/conversations {"id"}
    GET  /_standin/requests/{vendor}                 the request log (method, path, query, status, body)
    GET  /_standin/webhooks                          webhook deliveries with the receiver's status
    POST /_standin/faults  {"vendor", "kind": status|down|lose_answer, "status", "retry_after", "times", …}
    GET|DELETE /_standin/faults                      pending faults / clear them
    POST /_standin/missing {"vendor", "target"}      a repo/project/team/ticket/conversation that answers 404
    POST /_standin/config  {"webhook_url_base", "github_secret", "jira_secret", "linear_secret"}
    POST /_standin/reset                             forget everything held (configuration stays)
    POST /_standin/github/repos/{o}/{r}/issues/{n}/close {"state_reason"} | …/reopen
    POST /_standin/jira/issues/{key}/transition {"to": "Done", "resolution"?}
    POST /_standin/linear/issues/{id or identifier}/state {"state": "Done"}   (name, type or id)
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from feedbackloop_testing.standins import github, intercom, jira, linear, zendesk
from feedbackloop_testing.standins._common import VendorError
from feedbackloop_testing.standins.faults import FaultMiddleware
from feedbackloop_testing.standins.state import VENDORS, Fault, StandinConfig, State

__all__ = ["create_app", "env_for"]


class FaultIn(BaseModel):
    vendor: Literal["github", "jira", "linear", "zendesk", "intercom"]
    kind: Literal["status", "down", "lose_answer"]
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1, le=10_000)
    method: str | None = None
    path_contains: str | None = None


class MissingIn(BaseModel):
    vendor: Literal["github", "jira", "linear", "zendesk", "intercom"]
    target: str = Field(min_length=1, description="owner/repo, project key, team key, ticket or conversation id")


class ConfigIn(BaseModel):
    webhook_url_base: str | None = None
    github_secret: str | None = None
    jira_secret: str | None = None
    linear_secret: str | None = None


class CloseIn(BaseModel):
    state_reason: Literal["completed", "not_planned"] | None = "completed"


class TransitionIn(BaseModel):
    to: str = "Done"
    resolution: str | None = None


class LinearStateIn(BaseModel):
    state: str = "Done"


class TicketIn(BaseModel):
    id: int
    subject: str | None = None


class ConversationIn(BaseModel):
    id: str = Field(min_length=1)


def env_for(url: str, config: StandinConfig) -> dict[str, str]:
    """The TRACKER_* and NOTIFICATION_* variables that point the clients at the stand-ins served at ``url``, and the
    INGEST_<TRACKER>_SECRET of each webhook secret configured."""
    return {"TRACKER_GITHUB_TOKEN": config.github_token, "TRACKER_GITHUB_API_URL": f"{url}/github",
            "TRACKER_JIRA_URL": f"{url}/jira", "TRACKER_JIRA_EMAIL": config.jira_email,
            "TRACKER_JIRA_TOKEN": config.jira_token, "TRACKER_LINEAR_API_KEY": config.linear_api_key,
            "TRACKER_LINEAR_API_URL": f"{url}/linear/graphql",
            "NOTIFICATION_ZENDESK_URL": f"{url}/zendesk", "NOTIFICATION_ZENDESK_EMAIL": config.zendesk_email,
            "NOTIFICATION_ZENDESK_TOKEN": config.zendesk_token, "NOTIFICATION_INTERCOM_TOKEN": config.intercom_token,
            "NOTIFICATION_INTERCOM_ADMIN_ID": config.intercom_admin_id,
            "NOTIFICATION_INTERCOM_API_URL": f"{url}/intercom",
            # ingest verifies the webhooks the stand-ins send when an issue closes with the same secrets
            **{f"INGEST_{name.upper()}_SECRET": secret for name, secret in (
                ("github", config.github_secret), ("jira", config.jira_secret), ("linear", config.linear_secret))
               if secret}}


def create_app(config: StandinConfig | None = None) -> FastAPI:
    state = State(config or StandinConfig())
    app = FastAPI(title="Feedback Loop vendor stand-ins", docs_url="/_standin/docs",
                  openapi_url="/_standin/openapi.json")
    app.state.standins = state
    app.add_middleware(FaultMiddleware, state=state)

    @app.exception_handler(VendorError)
    async def vendor_error(request: Request, exc: VendorError) -> Response:
        return exc.response

    for prefix, module in (("/github", github), ("/jira", jira), ("/linear", linear), ("/zendesk", zendesk),
                           ("/intercom", intercom)):
        app.include_router(module.router, prefix=prefix, include_in_schema=False)

    @app.get("/_standin")
    async def about(request: Request) -> dict[str, Any]:
        url = str(request.base_url).rstrip("/")
        return {"vendors": {v: f"{url}/{v}" for v in VENDORS}, "env": env_for(url, state.config),
                "webhook_url_base": state.config.webhook_url_base}

    @app.get("/_standin/{tracker}/issues")
    async def issues(tracker: Literal["github", "jira", "linear"]) -> dict[str, Any]:
        return {"items": state.snapshot(tracker)}

    @app.get("/_standin/zendesk/tickets/{ticket_id}/comments")
    async def ticket_comments(ticket_id: int) -> dict[str, Any]:
        with state.lock:
            held = state.zendesk.get(ticket_id)
            return {"ticket": dict(held["ticket"]) if held else None,
                    "items": [dict(c) for c in held["comments"]] if held else []}

    @app.post("/_standin/zendesk/tickets", status_code=201)
    async def make_ticket(body: TicketIn, request: Request) -> dict[str, Any]:
        return dict(zendesk.ticket(state, body.id, request, body.subject)["ticket"])

    @app.get("/_standin/intercom/conversations/{conversation_id}")
    async def intercom_conversation(conversation_id: str) -> Response:
        with state.lock:
            held = state.intercom.get(conversation_id)
            if held is None:
                return JSONResponse({"detail": f"no conversation {conversation_id}"}, status_code=404)
            return JSONResponse(held)

    @app.post("/_standin/intercom/conversations", status_code=201)
    async def make_conversation(body: ConversationIn) -> dict[str, Any]:
        return dict(intercom.conversation(state, body.id))

    @app.get("/_standin/requests/{vendor}")
    async def requests_of(vendor: Literal["github", "jira", "linear", "zendesk", "intercom"]) -> dict[str, Any]:
        with state.lock:
            return {"items": [dict(r) for r in state.requests[vendor]]}

    @app.get("/_standin/webhooks")
    async def deliveries() -> dict[str, Any]:
        return {"items": state.snapshot("webhooks")}

    @app.post("/_standin/faults", status_code=201)
    async def add_fault(body: FaultIn) -> dict[str, Any]:
        fault = state.add_fault(Fault(**body.model_dump()))
        return {"id": fault.id, **body.model_dump()}

    @app.get("/_standin/faults")
    async def list_faults() -> dict[str, Any]:
        return {"items": state.snapshot("faults")}

    @app.delete("/_standin/faults", status_code=204)
    async def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
        return Response(status_code=204)

    @app.post("/_standin/missing", status_code=204)
    async def missing(body: MissingIn) -> Response:
        state.set_missing(body.vendor, body.target)
        return Response(status_code=204)

    @app.post("/_standin/config")
    async def configure(body: ConfigIn) -> dict[str, Any]:
        with state.lock:
            for name, value in body.model_dump(exclude_unset=True).items():
                setattr(state.config, name, value)
            return {"webhook_url_base": state.config.webhook_url_base,
                    "signed": [t for t in ("github", "jira", "linear") if getattr(state.config, f"{t}_secret")]}

    @app.post("/_standin/reset", status_code=204)
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    @app.post("/_standin/github/repos/{owner}/{repo}/issues/{number}/close")
    async def github_close(owner: str, repo: str, number: int, body: CloseIn | None = None) -> dict[str, Any]:
        return await github.close_issue(state, owner, repo, number, (body or CloseIn()).state_reason)

    @app.post("/_standin/github/repos/{owner}/{repo}/issues/{number}/reopen")
    async def github_reopen(owner: str, repo: str, number: int) -> dict[str, Any]:
        return await github.close_issue(state, owner, repo, number, None, reopen=True)

    @app.post("/_standin/jira/issues/{key}/transition")
    async def jira_transition(key: str, body: TransitionIn) -> dict[str, Any]:
        with state.lock:
            issue = state.jira.get(key.upper())
        if issue is None:
            raise VendorError(JSONResponse({"detail": f"no Jira issue {key}"}, status_code=404))
        return await jira.transition(state, issue, body.to, body.resolution)

    @app.post("/_standin/linear/issues/{wanted}/state")
    async def linear_state(wanted: str, body: LinearStateIn) -> dict[str, Any]:
        with state.lock:
            issue = next((i for i in state.linear.values() if wanted in (i["id"], i["identifier"])), None)
        if issue is None:
            raise VendorError(JSONResponse({"detail": f"no Linear issue {wanted}"}, status_code=404))
        return await linear.set_state(state, issue, body.state)

    return app
