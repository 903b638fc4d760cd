from feedbackloop.serve import serve
from ingest.cli import plugin

if __name__ == "__main__":
    serve(plugin.name, plugin.create_app, plugin.settings())
