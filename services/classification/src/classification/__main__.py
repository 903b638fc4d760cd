from classification.cli import plugin
from feedbackloop.serve import serve

if __name__ == "__main__":
    serve(plugin.name, plugin.create_app, plugin.settings())
