from feedbackloop.db import run_env
from notification.store.models import Base

run_env(Base.metadata, "notification")
