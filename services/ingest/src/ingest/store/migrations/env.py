from feedbackloop.db import run_env
from ingest.store.models import Base

run_env(Base.metadata, "ingest")
