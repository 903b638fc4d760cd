"""Local stand-ins of the GitHub, Jira Cloud, Linear, Zendesk and Intercom APIs, for tests and the README walkthrough.

One FastAPI app (:func:`create_app`) answers as the vendors answer (their shapes, auth checks and error bodies),
keeps state in memory, injects faults on request (a status N times, a dropped connection, a lost answer) and,
when an issue closes or reopens, sends the vendor's signed webhook to ``{webhook_url_base}/{tracker}``.

    python -m feedbackloop_testing.standins --port 8900 --webhooks http://127.0.0.1:8001/v1/webhooks \\
        --github-secret S --jira-secret S --linear-secret S

In tests, the ``standins`` fixture (:mod:`feedbackloop_testing.standins.fixture`) serves it on a free port.
"""

from feedbackloop_testing.standins.app import create_app, env_for
from feedbackloop_testing.standins.server import StandinServer
from feedbackloop_testing.standins.state import VENDORS, Fault, StandinConfig, State
from feedbackloop_testing.standins.webhooks import sign

__all__ = ["VENDORS", "Fault", "StandinConfig", "StandinServer", "State", "create_app", "env_for", "sign"]
