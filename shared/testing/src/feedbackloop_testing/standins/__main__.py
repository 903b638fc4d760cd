"""``python -m feedbackloop_testing.standins``: serve the stand-ins until interrupted."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import uvicorn

from feedbackloop_testing.standins.app import create_app, env_for
from feedbackloop_testing.standins.mail import start_mailbox
from feedbackloop_testing.standins.state import StandinConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        print(f"standins: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m feedbackloop_testing.standins",
                     description="Local stand-ins of the GitHub, Jira, Linear, Zendesk and Intercom APIs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--webhooks", metavar="URL", help="where closing an issue sends webhooks: URL/github|jira|"
                        "linear (e.g. http://127.0.0.1:8001/v1/webhooks)")
    parser.add_argument("--github-secret")
    parser.add_argument("--jira-secret")
    parser.add_argument("--linear-secret")
    parser.add_argument("--smtp-port", type=int, help="also run a mailbox (SMTP) on this port that prints each "
                        "message's recipients and subject (point NOTIFICATION_SMTP_PORT at it)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a port")
    if args.smtp_port is not None and not 0 < args.smtp_port < 65536:
        parser.error(f"--smtp-port {args.smtp_port} is not a port")
    if args.webhooks and not args.webhooks.startswith(("http://", "https://")):
        parser.error(f"--webhooks {args.webhooks!r} is not an http(s) URL")
    config = StandinConfig(webhook_url_base=args.webhooks, github_secret=args.github_secret,
                           jira_secret=args.jira_secret, linear_secret=args.linear_secret)
    url = f"http://{args.host}:{args.port}"
    env = " ".join(f"{k}={v}" for k, v in env_for(url, config).items())
    mailbox = None
    if args.smtp_port is not None:
        mailbox, _ = start_mailbox(args.host, args.smtp_port)
        env += f" NOTIFICATION_SMTP_HOST={args.host} NOTIFICATION_SMTP_PORT={args.smtp_port}"
    print(f"stand-ins at {url} (/github /jira /linear /zendesk /intercom, operator: /_standin); set: {env}",
          flush=True)
    try:
        uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    finally:
        if mailbox is not None:
            mailbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
