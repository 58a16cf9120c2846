"""Attachment upload and download (issue 13): a 10 MB photo through the resumable endpoint, on SQLite
and the folder store, in the app's own process (Flask's test client: no network in the figures).

    .venv/bin/python bench/attachments_bench.py [--megabytes 10] [--chunk-kib 2048] [--runs 3]

Prints, per run, the time to send every chunk (each sealed as it lands), to finish (SHA-256, the
content walk and the markup scan over the whole file, re-sealed into 64 KiB chunks) and to download
(opened chunk by chunk), with the peak memory Python allocated during finish and download.
"""

import argparse
import hashlib
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument("--chunk-kib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from config import TestingConfig
    from models import db
    from server import create_app
    from tests.attachment_samples import png
    from tests.factories import make_child, make_user, token_for

    size, chunk = args.megabytes * 1024 * 1024, args.chunk_kib * 1024
    data = png(filler=bytes(range(256)) * ((size - 100) // 256))
    folder = Path(tempfile.mkdtemp(prefix="homecoming-attachments-bench-"))
    config = TestingConfig()
    config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{folder / 'bench.sqlite'}"
    config.ATTACHMENT_DIR = str(folder / "files")
    config.ATTACHMENT_MAX_BYTES = len(data)
    config.ATTACHMENT_CHUNK_MAX_BYTES = chunk
    config.MAX_CONTENT_LENGTH = chunk + 1024
    app = create_app(config)
    client = app.test_client()
    with app.app_context():
        upgrade()
        boss = make_user("manager", username="bench.boss")
        child_id = str(make_child(make_user("caseworker", username="bench.cw")).id)
        db.session.commit()
        headers = token_for(client, boss)
    print(f"file {len(data):,} bytes, chunks of {chunk:,} bytes")
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        created = client.post(f"/api/v1/children/{child_id}/attachments/uploads", headers=headers, json={
            "content_type": "image/png", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}).get_json()
        for offset in range(0, len(data), chunk):
            answer = client.patch(f"/api/v1/attachments/uploads/{created['id']}", data=data[offset:offset + chunk],
                                  headers={**headers, "Upload-Offset": str(offset),
                                           "Content-Type": "application/offset+octet-stream"})
            assert answer.status_code == 200, answer.get_json()
        sent = time.perf_counter()
        tracemalloc.start()
        done = client.post(f"/api/v1/attachments/uploads/{created['id']}/finish", headers=headers)
        assert done.status_code == 201, done.get_json()
        finished = time.perf_counter()
        _, finish_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = client.get(f"/api/v1/attachments/{done.get_json()['id']}/content", headers=headers)
        body = got.data
        downloaded = time.perf_counter()
        _, download_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert body == data
        print(f"run {run}: chunks {sent - started:.2f} s, finish {finished - sent:.2f} s "
              f"(peak {finish_peak / 2**20:.1f} MiB), download {downloaded - finished:.2f} s "
              f"(peak {download_peak / 2**20:.1f} MiB, incl. the test client's copy of the body)")
        etag = {"If-Match": f'"{done.get_json()["sha256"]}"'}
        client.delete(f"/api/v1/attachments/{done.get_json()['id']}", headers={**headers, **etag})


if __name__ == "__main__":
    main()
