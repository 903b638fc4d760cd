from aggregation.store.models import Base
from feedbackloop.db import run_env

run_env(Base.metadata, "aggregation")
