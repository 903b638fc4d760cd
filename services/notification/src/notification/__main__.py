from feedbackloop.serve import serve
from notification.config import NotificationSettings
from notification.main import create_app

if __name__ == "__main__":
    serve("notification", create_app, NotificationSettings())  # type: ignore[arg-type]
