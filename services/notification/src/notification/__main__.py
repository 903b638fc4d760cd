from feedbackloop.serve import serve
from notification.cli import plugin

if __name__ == "__main__":
    serve(plugin.name, plugin.create_app, plugin.settings())
