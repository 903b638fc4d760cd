from feedbackloop.serve import serve
from ingest.config import IngestSettings
from ingest.main import create_app

if __name__ == "__main__":
    serve("ingest", create_app, IngestSettings())  # type: ignore[arg-type]
