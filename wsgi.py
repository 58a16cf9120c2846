from server import create_app
from server.collector import settle

app = create_app()
settle()  # each gunicorn worker imports this module: the collector is settled per process
