"""Serve the app with waitress in its own process, for tests and benchmarks that need a real server.

    python tests/serve_for_tests.py DATABASE_URL PORT [--busy-ms N]

It serves the testing configuration on an already migrated database. ``--busy-ms`` shortens SQLite's
busy timeout so a test holding the database lock makes the server answer 503 quickly instead of
waiting ten seconds.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("port", type=int)
    parser.add_argument("--busy-ms", type=int, default=None)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--answer-delay-ms", type=int, default=0,
                        help="Hold every push answer this long after the batch committed (a slow link "
                             "back to the phone), so a test can kill the server between commit and answer.")
    args = parser.parse_args()

    from sqlalchemy import event
    from waitress import serve

    from config import TestingConfig
    from models import db
    from server import create_app

    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = args.database_url
    app = create_app(config)
    if args.busy_ms is not None:
        with app.app_context():
            def short_busy_timeout(dbapi_connection, _record):
                # Runs after the app's own pragmas (listeners fire in order), so it wins.
                dbapi_connection.execute(f"PRAGMA busy_timeout={int(args.busy_ms)}")

            event.listen(db.engine, "connect", short_busy_timeout)
    if args.answer_delay_ms:
        import time

        from flask import request

        @app.after_request
        def slow_answer(response):
            if request.path == "/api/v1/sync/push":
                time.sleep(args.answer_delay_ms / 1000)
            return response

    from server.collector import settle

    settle()  # as a production server process does (server/cli/serve.py, wsgi.py)
    serve(app, host="127.0.0.1", port=args.port, threads=args.threads, ident="homecoming-test",
          _quiet=True)


if __name__ == "__main__":
    main()
