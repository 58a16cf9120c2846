"""Every file docs/deploy.md installs exists and parses as its tool reads it (issue 15): nginx -t with a
test certificate, systemd-analyze verify, sh -n, and the environment file against the settings the code
reads. A missing tool skips; under HOMECOMING_STRICT=1 only the ones .ci/run installs must be there."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from config import ProductionConfig
from tests.conftest import STRICT

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
UNITS = sorted((DEPLOY / "systemd").glob("homecoming-*"))
INSTALLED_BY_CI = (ROOT / ".ci" / "run").read_text()


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        if STRICT and name in INSTALLED_BY_CI:
            pytest.fail(f"{name} is installed by .ci/run but missing")
        pytest.skip(f"needs {name} (apt-get install {'nginx-light' if name == 'nginx' else 'systemd'})")
    return path


def unit_settings(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as sections of (key, value) pairs; keys may repeat, as systemd allows."""
    sections, current = {}, None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}:{number}: not KEY=VALUE inside a section"
        current.append((key, value))
    return sections


def values(section, key) -> list[str]:
    return [v for k, v in section if k == key]


def test_the_guide_names_every_deploy_file_and_each_exists():
    named = set(re.findall(r"`(deploy/[\w./-]+)`", GUIDE.read_text()))
    for name in named:
        assert (ROOT / name).is_file(), f"docs/deploy.md names {name}, which is missing"
    shipped = {str(p.relative_to(ROOT)) for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= named, f"docs/deploy.md does not say how to install {sorted(shipped - named)}"


def test_units_run_as_the_service_user_with_their_keys_as_credentials():
    services = [u for u in UNITS if u.suffix == ".service"]
    assert {u.stem for u in services} == {"homecoming-web", "homecoming-scheduler", "homecoming-migrate",
                                          "homecoming-backup"}
    for unit in services:
        service = unit_settings(unit)["Service"]
        assert values(service, "User") == ["homecoming"], unit.name
        assert values(service, "EnvironmentFile") == ["/etc/homecoming/homecoming.env"], unit.name
        assert values(service, "UMask") == ["0077"], unit.name
        credentials = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in values(service, "LoadCredential")}
        assert all(path.startswith("/etc/homecoming/keys/") for path in credentials.values()), unit.name
        files = dict(v.split("=", 1) for v in values(service, "Environment") if "_FILE=" in v)
        assert {path.removeprefix("%d/") for path in files.values()} == set(credentials), unit.name
        assert {"secret.key", "data.key", "search.key"} <= set(credentials), unit.name
        assert ("backup.key" in credentials) == (unit.stem == "homecoming-backup"), unit.name
    commands = {u.stem: " ".join(values(unit_settings(u)["Service"], "ExecStart")) for u in services}
    assert "gunicorn --config /opt/homecoming/deploy/gunicorn.conf.py wsgi:app" in commands["homecoming-web"]
    assert commands["homecoming-scheduler"].endswith("flask --app wsgi scheduler run")
    assert commands["homecoming-migrate"].endswith("flask --app wsgi db upgrade")
    assert "flask --app wsgi backup create" in commands["homecoming-backup"]
    timer = unit_settings(DEPLOY / "systemd" / "homecoming-backup.timer")["Timer"]
    assert values(timer, "Persistent") == ["true"] and values(timer, "OnCalendar")


def test_systemd_accepts_the_units(tmp_path):
    analyze = tool("systemd-analyze")
    env = tmp_path / "homecoming.env"
    env.write_text((DEPLOY / "homecoming.env.example").read_text())
    copies = []
    for unit in UNITS:
        # Point at this checkout, whose .venv has gunicorn and flask, so verify can check every command.
        text = unit.read_text().replace("/opt/homecoming", str(ROOT)).replace(
            "/etc/homecoming/homecoming.env", str(env))
        copy = tmp_path / unit.name
        copy.write_text(text)
        copies.append(str(copy))
    result = subprocess.run([analyze, "verify", "--man=no", *copies], capture_output=True, text=True, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "homecoming" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_nginx_accepts_the_site_with_a_test_certificate(tmp_path):
    nginx = tool("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=homecoming.test", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    site = (DEPLOY / "nginx" / "homecoming.conf").read_text()
    for installed, here in {
        "/etc/letsencrypt/live/homecoming.example.org/fullchain.pem": tmp_path / "cert.pem",
        "/etc/letsencrypt/live/homecoming.example.org/privkey.pem": tmp_path / "key.pem",
        "/etc/nginx/homecoming-proxy.conf": DEPLOY / "nginx" / "homecoming-proxy.conf",
        "/var/log/nginx/": f"{tmp_path}/",
    }.items():
        assert installed in site
        site = site.replace(installed, str(here))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         f"events {{}}\nhttp {{\n  include {tmp_path}/site.conf;\n}}\n")
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_nginx_logs_no_query_string():
    site = (DEPLOY / "nginx" / "homecoming.conf").read_text()
    log_format = site[site.index("log_format"):site.index(";", site.index("log_format"))]
    assert "$uri" in log_format
    assert not re.search(r"\$(request|request_uri|args|query_string)\b", log_format)
    assert "X-Request-Id $request_id" in (DEPLOY / "nginx" / "homecoming-proxy.conf").read_text()


def test_the_command_wrapper_is_valid_shell():
    wrapper = DEPLOY / "homecoming-flask"
    assert wrapper.stat().st_mode & 0o111
    subprocess.run(["sh", "-n", str(wrapper)], check=True, timeout=30)


def env_template() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "homecoming.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=VALUE: {line!r}"
            pairs[key] = value
    return pairs


def test_the_environment_template_holds_no_secret_and_only_settings_the_code_reads():
    pairs = env_template()
    code = (ROOT / "config.py").read_text() + (DEPLOY / "gunicorn.conf.py").read_text()
    for key in pairs:
        assert f'"{key}"' in code or f'"{key.removeprefix("HOMECOMING_")}"' in code, f"nothing reads {key}"
        assert not re.search(r"(KEY|SECRET|PASSWORD|TOKEN)$", key), f"{key} is a secret: make it a credential"


def test_the_environment_template_makes_a_valid_production_config(monkeypatch, tmp_path):
    for key, value in env_template().items():
        monkeypatch.setenv(key, value)
    for name in ("SECRET_KEY", "DATA_KEY", "SEARCH_KEY", "METRICS_TOKEN"):
        path = tmp_path / name.lower()
        path.write_text(f"fictional-{name.lower()}-for-the-test-only\n")
        path.chmod(0o600)
        monkeypatch.setenv(f"HOMECOMING_{name}_FILE", str(path))
    config = ProductionConfig()
    config.validate()
    assert config.SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg://")
    assert config.LOG_FORMAT == "json" and config.PROXY_HOPS == 1 and config.SESSION_COOKIE_SECURE
    assert config.METRICS_TOKEN == "fictional-metrics_token-for-the-test-only"
