from feedbackloop.retry import sleep_unless

__all__ = ["sleep_unless"]
