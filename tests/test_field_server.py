"""The field app's shell as the server serves it (issue 9): public files with a strict CSP, a Service
Worker whose precache list and cache name come from the files on disk, and the vocabulary from models/."""

import json
import re
import shutil

from models import lifecycle, vocab
from server import field_app


def worker(client):
    response = client.get("/field/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    text = response.get_data(as_text=True)
    cache = json.loads(re.search(r"const CACHE = (\"[^\"]+\");", text).group(1))
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", text).group(1))
    return response, cache, precache


def test_the_shell_is_public_with_a_strict_csp_and_no_no_store(client):
    response = client.get("/field/")
    assert response.status_code == 200 and b'<script type="module"' in response.data
    csp = response.headers["Content-Security-Policy"]
    for directive in ("script-src 'self'", "connect-src 'self'", "worker-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Cache-Control"] == "no-cache"  # revalidated, never no-store: it must work offline


def test_the_worker_precaches_every_file_on_disk_and_is_scoped_to_the_app(client):
    response, cache, precache = worker(client)
    assert response.headers["Service-Worker-Allowed"] == "/field/"
    on_disk = {p.relative_to(field_app.STATIC).as_posix() for p in field_app.STATIC.rglob("*") if p.is_file()}
    assert set(precache) == (on_disk - {"sw.js", "index.html"}) | {"./", "vocab.json"}
    assert "js/engine.js" in precache and cache.startswith("homecoming-field-")
    for url in precache:
        assert client.get("/field/" + url.removeprefix("./")).status_code == 200, url


def test_the_cache_name_changes_with_any_file(client, tmp_path, monkeypatch):
    _, before, _ = worker(client)
    copy = tmp_path / "static"
    shutil.copytree(field_app.STATIC, copy)
    monkeypatch.setattr(field_app, "STATIC", copy)
    _, same, _ = worker(client)
    (copy / "css" / "field.css").write_text((copy / "css" / "field.css").read_text() + "\n/* changed */\n")
    _, after, _ = worker(client)
    assert same == before and after != before


def test_only_the_apps_files_are_served(client):
    for path in ("/field/../config.py", "/field/sw.js.bak", "/field/nothing.js", "/field/%2e%2e/wsgi.py"):
        assert client.get(path).status_code == 404, path


def test_the_vocabulary_comes_from_the_models(client):
    served = client.get("/field/vocab.json").get_json()
    assert served["not_seen_reasons"] == list(vocab.NOT_SEEN_REASONS)
    assert served["danger_concerns"] == list(vocab.DANGER_CONCERNS)
    assert served["stages"] == list(lifecycle.STAGES)
    for stage, targets in served["caseworker_moves"].items():
        assert set(targets) == {t for t in lifecycle.allowed_targets(stage) if (stage, t) not in lifecycle.MANAGER_ONLY}
