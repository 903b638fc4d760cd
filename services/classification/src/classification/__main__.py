from classification.config import ClassificationSettings
from classification.main import create_app
from feedbackloop.serve import serve

if __name__ == "__main__":
    serve("classification", create_app, ClassificationSettings())  # type: ignore[arg-type]
