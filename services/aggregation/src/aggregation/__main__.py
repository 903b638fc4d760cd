from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.serve import serve

if __name__ == "__main__":
    serve("aggregation", create_app, AggregationSettings())  # type: ignore[arg-type]
