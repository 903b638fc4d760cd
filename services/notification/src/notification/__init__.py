"""Notification: matches rules against classified feedback and insights, and delivers signed webhooks."""

__version__ = "0.1.0"
