"""The serving process's cycle collector (server/collector.py), checked in a fresh interpreter so this
test process keeps its own settings."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_settle_freezes_what_exists_and_collects_the_young_less_often():
    script = ("import gc; before = gc.get_threshold()[0]; from server.collector import settle; settle(); "
              "print(before, gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["700", "10000", "True"]


def test_every_serving_entry_point_settles_the_collector():
    for path in ("wsgi.py", "server/cli/serve.py", "tests/serve_for_tests.py"):
        assert "settle()" in (ROOT / path).read_text(), path
