"""Where the trackers are and the credentials to reach them (``TRACKER_*``), read by every service that calls one.

    TRACKER_GITHUB_TOKEN        a GitHub token with Issues read/write on the target repositories   (unset: off)
    TRACKER_GITHUB_API_URL      GitHub's REST API                                  https://api.github.com
    TRACKER_JIRA_URL            the Jira Cloud site, e.g. https://acme.atlassian.net                (unset: off)
    TRACKER_JIRA_EMAIL          the Atlassian account the API token belongs to                       (unset: off)
    TRACKER_JIRA_TOKEN          its API token                                                        (unset: off)
    TRACKER_LINEAR_API_KEY      a Linear personal API key                                            (unset: off)
    TRACKER_LINEAR_API_URL      Linear's GraphQL endpoint                          https://api.linear.app/graphql
    TRACKER_TIMEOUT_SECONDS     one request to a tracker, at most                                     10
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TrackerSettings"]


class TrackerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore")

    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    jira_url: str | None = Field(default=None, description="The Jira Cloud site, e.g. https://acme.atlassian.net")
    jira_email: str | None = None
    jira_token: SecretStr | None = None
    linear_api_key: SecretStr | None = None
    linear_api_url: str = "https://api.linear.app/graphql"
    timeout_seconds: float = Field(default=10, gt=0, description="One request to a tracker, at most")
