"""Configuration classes. Values come from ``HOMECOMING_*`` environment variables.

Nothing is read at import time: each class reads the environment when it is instantiated, so tests and
the factory can build a configuration after changing the environment.
"""

import os
import tempfile
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent / "instance"

# DESIGN §2: every follow-up and alert rule, in days unless the name says otherwise.
RULE_DEFAULTS = {
    "ASSESSMENT_DUE_DAYS": 7,
    "RECEPTION_WARN_DAYS": 70,
    "RECEPTION_OVERDUE_DAYS": 84,
    "FIRST_VISIT_DAYS": 14,
    "VISIT_DAYS_HIGH": 7,
    "VISIT_DAYS_MEDIUM": 30,
    "VISIT_DAYS_LOW": 90,
    "VISIT_DAYS_NONE": 90,
    "PLAN_REVIEW_DAYS": 90,
    "MIN_FOLLOW_UP_DAYS": 365,
    "DUE_SOON_DAYS": 2,
    "ESCALATE_OVERDUE_DAYS": 7,
    "ESCALATE_MISSED_IN_ROW": 2,
    # A referral sent and not accepted or declined this long alerts the caseworker and managers.
    "REFERRAL_RESPONSE_DAYS": 14,
}


def rule_problems(rules: dict) -> list[str]:
    """What is wrong with a set of follow-up rules, each naming its environment variable."""
    problems = []
    for name, value in rules.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:
            problems.append(f"HOMECOMING_{name} must be a whole number of days from 1 to 3650, got {value!r}")
    if problems:
        return problems
    if rules["RECEPTION_WARN_DAYS"] >= rules["RECEPTION_OVERDUE_DAYS"]:
        problems.append("HOMECOMING_RECEPTION_WARN_DAYS must be less than HOMECOMING_RECEPTION_OVERDUE_DAYS "
                        f"(got {rules['RECEPTION_WARN_DAYS']} and {rules['RECEPTION_OVERDUE_DAYS']})")
    cadence = [rules[f"VISIT_DAYS_{level}"] for level in ("HIGH", "MEDIUM", "LOW", "NONE")]
    if cadence != sorted(cadence):
        problems.append("Visits cannot be rarer at a higher risk level: need HOMECOMING_VISIT_DAYS_HIGH <= "
                        f"_MEDIUM <= _LOW <= _NONE (got {' / '.join(map(str, cadence))})")
    if rules["DUE_SOON_DAYS"] >= rules["VISIT_DAYS_HIGH"]:
        problems.append("HOMECOMING_DUE_SOON_DAYS must be less than HOMECOMING_VISIT_DAYS_HIGH, or a reminder "
                        f"would come before the previous visit (got {rules['DUE_SOON_DAYS']} and "
                        f"{rules['VISIT_DAYS_HIGH']})")
    return problems


def scheduler_problems(config) -> list[str]:
    names = ("SCAN_INTERVAL_MINUTES", "DISPATCH_INTERVAL_SECONDS", "LEADER_POLL_SECONDS",
             "NOTIFY_EXPIRE_HOURS", "NOTIFY_RETRY_SECONDS", "SMTP_TIMEOUT_SECONDS", "RETENTION_DAYS",
             "RETENTION_BATCH_SIZE", "MATCH_SWEEP_HOURS", "ATTACHMENT_MAX_BYTES", "ATTACHMENT_MAX_PER_CHILD",
             "ATTACHMENT_CHUNK_MAX_BYTES", "ATTACHMENT_UPLOAD_HOURS")
    problems = [f"HOMECOMING_{name} must be a positive whole number, got {getattr(config, name)!r}"
                for name in names if getattr(config, name) < 1]
    if config.WEBHOOK_URL and not config.WEBHOOK_SECRET:
        problems.append("HOMECOMING_WEBHOOK_URL needs HOMECOMING_WEBHOOK_SECRET, to sign each call")
    problems += smtp_problems(config)
    return problems


def smtp_problems(config) -> list[str]:
    problems = []
    if config.SMTP_SECURITY not in ("starttls", "ssl", "none"):
        problems.append(f"HOMECOMING_SMTP_SECURITY must be starttls, ssl or none, got {config.SMTP_SECURITY!r}")
    if config.SMTP_SECURITY == "none" and (config.SMTP_REQUIRE_TLS or config.SMTP_USERNAME):
        problems.append("HOMECOMING_SMTP_SECURITY=none cannot go with HOMECOMING_SMTP_REQUIRE_TLS or a "
                        "HOMECOMING_SMTP_USERNAME (a password is only sent over TLS)")
    if bool(config.SMTP_USERNAME) != bool(config.SMTP_PASSWORD):
        problems.append("HOMECOMING_SMTP_USERNAME and HOMECOMING_SMTP_PASSWORD go together")
    if config.SMTP_CA_FILE and not Path(config.SMTP_CA_FILE).is_file():
        problems.append(f"HOMECOMING_SMTP_CA_FILE is not a file: {config.SMTP_CA_FILE}")
    return problems


def time_zone_problems(name: str) -> list[str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"HOMECOMING_TIME_ZONE must be a time zone name such as Africa/Kampala, got {name!r}"]
    return []


def _env(name, default=None):
    return os.environ.get(f"HOMECOMING_{name}", default)


def _env_int(name, default):
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"HOMECOMING_{name} must be a whole number, got {raw!r}") from None


def _env_float(name, default):
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError(f"HOMECOMING_{name} must be a number above 0 and at most 1, got {raw!r}")
    return value


class Config:
    TESTING = False
    DEBUG = False

    def __init__(self):
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL") or self.default_database_url()
        # A connection dropped by a database restart is noticed at checkout, not by a request; and a
        # failed statement's logged error never shows its parameters (search hashes, ciphertext).
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
        read_keys(self)
        self.BASE_URL = _env("BASE_URL", "http://127.0.0.1:5000")
        self.API_TOKEN_MINUTES = _env_int("API_TOKEN_MINUTES", 60)
        # Request bodies larger than this are refused with 413 before they are parsed.
        self.MAX_CONTENT_LENGTH = _env_int("MAX_BODY_BYTES", 10 * 1024 * 1024)
        self.SYNC_MAX_MUTATIONS = _env_int("SYNC_MAX_MUTATIONS", 1000)
        self.SYNC_PULL_MAX_LIMIT = _env_int("SYNC_PULL_MAX_LIMIT", 2000)
        # Pull cursors below this sequence number get 409 resync_required (after history is compacted).
        self.SYNC_RESYNC_BEFORE_SEQ = _env_int("SYNC_RESYNC_BEFORE_SEQ", 0)
        self.SCHEDULER_IN_PROCESS = False
        self.RULES = {name: _env_int(name, default) for name, default in RULE_DEFAULTS.items()}
        self.SMTP_HOST = _env("SMTP_HOST")
        # E-mail transport security (server/notify/channels.py): starttls (when offered) | ssl | none.
        self.SMTP_SECURITY = _env("SMTP_SECURITY", "starttls")
        self.SMTP_PORT = _env_int("SMTP_PORT", 465 if self.SMTP_SECURITY == "ssl" else 25)
        self.SMTP_REQUIRE_TLS = _env("SMTP_REQUIRE_TLS", "0").lower() in ("1", "true", "yes")
        self.SMTP_CA_FILE = _env("SMTP_CA_FILE")  # a private CA's certificates (PEM); else the system's
        self.SMTP_USERNAME = _env("SMTP_USERNAME")  # sent only over TLS
        self.SMTP_PASSWORD = _env("SMTP_PASSWORD")
        self.SMTP_FROM = _env("SMTP_FROM", "homecoming@localhost")
        self.WEBHOOK_URL = _env("WEBHOOK_URL")
        self.WEBHOOK_SECRET = _env("WEBHOOK_SECRET")
        # The scheduler (server/scheduler.py) and the notification outbox (server/notify/).
        self.SCAN_INTERVAL_MINUTES = _env_int("SCAN_INTERVAL_MINUTES", 60)
        self.DISPATCH_INTERVAL_SECONDS = _env_int("DISPATCH_INTERVAL_SECONDS", 60)
        self.LEADER_POLL_SECONDS = _env_int("LEADER_POLL_SECONDS", 5)
        self.NOTIFY_EXPIRE_HOURS = _env_int("NOTIFY_EXPIRE_HOURS", 72)
        self.NOTIFY_RETRY_SECONDS = _env_int("NOTIFY_RETRY_SECONDS", 60)
        self.SMTP_TIMEOUT_SECONDS = _env_int("SMTP_TIMEOUT_SECONDS", 10)
        # Retention (models/retention.py, docs/operations.md): closed cases are de-identified this many
        # days after closure. Three years: past the usual donor audit window and the months in which a
        # closed case is most often reopened, without keeping names of former child soldiers longer.
        self.RETENTION_DAYS = _env_int("RETENTION_DAYS", 1095)
        self.RETENTION_BATCH_SIZE = _env_int("RETENTION_BATCH_SIZE", 200)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.BASE_URL.startswith("https://")
        # The manager web: a session idle this long ends; devices unseen this long are flagged.
        self.WEB_SESSION_IDLE_MINUTES = _env_int("WEB_SESSION_IDLE_MINUTES", 8 * 60)
        self.WEB_SESSION_MAX_HOURS = _env_int("WEB_SESSION_MAX_HOURS", 12)
        self.WEB_DEVICE_STALE_DAYS = _env_int("WEB_DEVICE_STALE_DAYS", 7)
        # A child's district is one of these (comma-separated; unset: models.districts.DEFAULT).
        self.DISTRICTS = _env("DISTRICTS")
        # Production (docs/deploy.md): JSON log lines for a collector.
        self.LOG_FORMAT = _env("LOG_FORMAT", "text")
        # Proxies in front that set X-Forwarded-For/-Proto (nginx: 1). The client's address feeds the
        # login throttle and the audit trail: behind nginx without this, every client is 127.0.0.1.
        self.PROXY_HOPS = _env_int("PROXY_HOPS", 0)
        # OpenRosa devices (docs/odk.md). What the caseload file on an ODK phone shows of each child
        # besides the case code (comma-separated child fields; restricted ones are refused): whoever
        # holds a lost phone can read it. Default: the first given name, so a caseworker knows whom
        # the code means and a finder learns a first name and an opaque code, not a family or a village.
        self.ODK_CASELOAD_FIELDS = tuple(n.strip() for n in _env("ODK_CASELOAD_FIELDS", "given_name").split(",")
                                         if n.strip())
        # A folder of the programme's own XLSForms, served beside the shipped ones.
        self.ODK_FORMS_DIR = _env("ODK_FORMS_DIR")
        # Matching (models/matching.py, docs/tracing.md): pairs scoring at least this go to the review queue.
        self.MATCH_THRESHOLD = _env_float("MATCH_THRESHOLD", 0.85)  # models.matching.DEFAULT_THRESHOLD
        self.MATCH_SWEEP_HOURS = _env_int("MATCH_SWEEP_HOURS", 6)
        # Times on the web and in e-mails are shown in the programme's zone (an IANA name), with its
        # abbreviation ("14:05 EAT"); they are stored in UTC.
        self.TIME_ZONE = _env("TIME_ZONE", "Africa/Kampala")
        # Attachments (models/attachments.py, docs/referrals.md): sealed files outside the database, in
        # this folder, or in an S3-compatible bucket when one is named (endpoint, region and credentials
        # the usual AWS way: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
        self.ATTACHMENT_DIR = _env("ATTACHMENT_DIR", str(INSTANCE_DIR / "attachments"))
        self.ATTACHMENT_S3_BUCKET = _env("ATTACHMENT_S3_BUCKET")
        self.ATTACHMENT_S3_PREFIX = _env("ATTACHMENT_S3_PREFIX", "")
        self.ATTACHMENT_S3_ENDPOINT = _env("ATTACHMENT_S3_ENDPOINT")
        self.ATTACHMENT_MAX_BYTES = _env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
        self.ATTACHMENT_MAX_PER_CHILD = _env_int("ATTACHMENT_MAX_PER_CHILD", 50)
        # One PATCH of a resumable upload carries at most this much (kept under MAX_BODY_BYTES).
        self.ATTACHMENT_CHUNK_MAX_BYTES = _env_int("ATTACHMENT_CHUNK_MAX_BYTES", 2 * 1024 * 1024)
        self.ATTACHMENT_UPLOAD_HOURS = _env_int("ATTACHMENT_UPLOAD_HOURS", 72)

    def default_database_url(self):
        return f"sqlite:///{INSTANCE_DIR / 'homecoming.sqlite'}"

    def validate(self):
        """Raise ValueError naming what is missing; called by the factory before anything starts."""
        problems = rule_problems(self.RULES) + scheduler_problems(self) + time_zone_problems(self.TIME_ZONE)
        if self.LOG_FORMAT not in ("text", "json"):
            problems.append(f"HOMECOMING_LOG_FORMAT must be text or json, got {self.LOG_FORMAT!r}")
        data_keys = {self.DATA_KEY, *self.DATA_KEYS_OLD.values()} - {None}
        if self.BACKUP_KEY and self.BACKUP_KEY in data_keys:
            problems.append("HOMECOMING_BACKUP_KEY must differ from every data key: a backup must not open "
                            "with the key that sits on the server")
        if problems:
            raise ValueError("Invalid settings: " + "; ".join(problems))


class DevelopmentConfig(Config):
    DEBUG = False  # the reloader would start the in-process scheduler twice; `make run` uses waitress

    def __init__(self):
        super().__init__()
        # The embedded default creates its keys on first start, so `make run` works from a fresh clone,
        # in a key folder away from the database's (finding 1 of issue 8): a copy of the data folder, a
        # backup of it or a seized instance/ alone decrypts nothing.
        read_development_keys(self)
        if self.SQLALCHEMY_DATABASE_URI == self.default_database_url():
            INSTANCE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


class TestingConfig(Config):
    TESTING = True

    def __init__(self):
        super().__init__()
        self.SECRET_KEY = "test-secret-key"
        # A fixed, public key: test data is fictional, never real.
        self.DATA_KEY = "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA="
        self.SEARCH_KEY = "dGVzdC1zZWFyY2gta2V5LXRlc3Qtc2VhcmNoLWtleTA="
        self.DATA_KEY_VERSION = 1
        self.DATA_KEYS_OLD = {}
        self.BACKUP_KEY = "dGVzdC1iYWNrdXAta2V5LWZpY3Rpb25hbC0wMDAwMDA="
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
        self.BASE_URL = "http://homecoming.test"
        # Tests that upload set their own folder; this one keeps strays out of the repository.
        self.ATTACHMENT_DIR = _env("ATTACHMENT_DIR") or os.path.join(
            tempfile.gettempdir(), f"homecoming-test-attachments-{os.getpid()}")


class ProductionConfig(Config):
    def __init__(self):
        super().__init__()
        # Sessions travel only over HTTPS in production, whatever BASE_URL says (a TLS proxy in front
        # may forward plain HTTP; the browser still sees https).
        self.SESSION_COOKIE_SECURE = True

    def validate(self):
        super().validate()
        missing = [f"HOMECOMING_{name}" for name in ("SECRET_KEY", "DATA_KEY", "SEARCH_KEY") if not getattr(self, name)]
        if missing:
            raise ValueError(
                "Production refuses to start without " + " and ".join(missing)
                + " (or the same name with _FILE: a file holding the key, mode 600, away from the data)"
                + ". Generate each with: python3 -c 'import secrets,base64;"
                " print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name=None):
    name = name or _env("CONFIG", "development")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise ValueError(f"HOMECOMING_CONFIG must be one of {', '.join(CONFIGS)}, got {name!r}") from None


# Keys and the files that hold them (issue 8, findings 1 and 9; docs/operations.md "Keys").
#
# Each key comes from HOMECOMING_<NAME> or from a file named by HOMECOMING_<NAME>_FILE. A key file must be
# readable by its owner only and must not sit in the database's folder: whoever copies that folder (a
# backup, a seized laptop) must not get the key with it.
#
# The data key is a ring: the current key and its version, plus older keys still needed to read values
# sealed before a rotation. From the environment: HOMECOMING_DATA_KEY with HOMECOMING_DATA_KEY_VERSION
# (default 1) and HOMECOMING_DATA_KEY_OLD ("1:<key>,2:<key>"). In a key file: one bare key (version 1) or
# lines "VERSION:KEY"; the highest version is the current key.

# Keys the name-search index (models/search.py) under SEARCH_KEY: not the data key, so one leaking is not both.
KEY_FILES = {"SECRET_KEY": "secret.key", "DATA_KEY": "data.key", "BACKUP_KEY": "backup.key",
             "SEARCH_KEY": "search.key"}


def database_dir(url: str | None) -> Path | None:
    """The folder holding a SQLite database file; None for PostgreSQL or an in-memory database."""
    if not url or not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).expanduser().resolve().parent


def _within(path: Path, folder: Path) -> bool:
    path = path.expanduser().resolve()
    return path == folder or folder in path.parents


def read_key_file(path: Path, variable: str, db_dir: Path | None) -> str:
    """A key file's text, refused if others can read it or if it sits with the data."""
    path = Path(path).expanduser()
    if db_dir is not None and _within(path, db_dir):
        raise ValueError(f"{variable}: {path} is in the database's folder ({db_dir}); whoever copies the data "
                         "would get the key with it. Keep keys elsewhere (docs/operations.md).")
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path} ({exc.strerror})") from None
    if mode & 0o077:
        raise ValueError(f"{variable}: {path} is readable by group or others (mode {mode:04o}); "
                         f"run: chmod 600 {path}")
    return path.read_text().strip()


def _key_setting(name: str, db_dir: Path | None) -> str | None:
    value, file = _env(name), _env(f"{name}_FILE")
    if value and file:
        raise ValueError(f"Set HOMECOMING_{name} or HOMECOMING_{name}_FILE, not both")
    if file:
        return read_key_file(Path(file), f"HOMECOMING_{name}_FILE", db_dir) or None
    return value or None


def parse_key_ring(text: str, variable: str) -> tuple[int | None, str, dict[int, str]]:
    """(version or None for a bare key, current key, older keys by version) from key-ring text."""
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    entries = [e for line in lines for e in line.replace(",", " ").split()]
    if len(entries) == 1 and ":" not in entries[0]:
        return None, entries[0], {}
    ring: dict[int, str] = {}
    for number, entry in enumerate(entries, 1):
        version, sep, key = entry.partition(":")
        # Never echo the entry: it holds a key.
        if not sep or not version.isdigit() or int(version) < 1 or int(version) in ring:
            raise ValueError(f"{variable}: entry {number} is not VERSION:KEY with a new version from 1 "
                             "(for example 2:<key>)")
        ring[int(version)] = key
    if not ring:
        raise ValueError(f"{variable} holds no key")
    current = max(ring)
    return current, ring.pop(current), ring


def _install_data_keys(config, text: str, variable: str) -> None:
    version, key, older = parse_key_ring(text, variable)
    chosen = _env_int("DATA_KEY_VERSION", None)
    if version is not None and chosen is not None and chosen != version:
        raise ValueError(f"HOMECOMING_DATA_KEY_VERSION is {chosen} but {variable} makes version {version} "
                         "current; drop one of them")
    config.DATA_KEY, config.DATA_KEY_VERSION = key, version or chosen or 1
    old = _env("DATA_KEY_OLD")
    if old:
        newest_version, newest, rest = parse_key_ring(old, "HOMECOMING_DATA_KEY_OLD")
        if newest_version is None:
            raise ValueError("HOMECOMING_DATA_KEY_OLD: write each older key as VERSION:KEY")
        older = {**older, **rest, newest_version: newest}
    if config.DATA_KEY_VERSION in older:
        raise ValueError(f"data key version {config.DATA_KEY_VERSION} is both current and old")
    config.DATA_KEYS_OLD = older


def read_keys(config) -> None:
    """SECRET_KEY, the DATA_KEY ring, BACKUP_KEY, SEARCH_KEY and METRICS_TOKEN from the environment or
    key files."""
    db_dir = database_dir(config.SQLALCHEMY_DATABASE_URI)
    config.KEY_DIR = None
    config.SECRET_KEY = _key_setting("SECRET_KEY", db_dir)
    config.BACKUP_KEY = _key_setting("BACKUP_KEY", db_dir)
    config.SEARCH_KEY = _key_setting("SEARCH_KEY", db_dir)
    # The bearer token /metrics asks for (server/metrics.py); no token, no metrics.
    config.METRICS_TOKEN = _key_setting("METRICS_TOKEN", db_dir)
    # The RSA private key (PEM) that opens encrypted OpenRosa forms (the restricted profile, docs/odk.md).
    config.ODK_PRIVATE_KEY = _key_setting("ODK_PRIVATE_KEY", db_dir)
    config.DATA_KEY, config.DATA_KEY_VERSION, config.DATA_KEYS_OLD = None, 1, {}
    data = _key_setting("DATA_KEY", db_dir)
    if data:
        variable = "HOMECOMING_DATA_KEY_FILE" if _env("DATA_KEY_FILE") else "HOMECOMING_DATA_KEY"
        _install_data_keys(config, data, variable)


def development_key_dir(db_dir: Path | None) -> Path:
    """HOMECOMING_KEY_DIR, else $XDG_CONFIG_HOME/homecoming (~/.config/homecoming); never the data's."""
    chosen = _env("KEY_DIR")
    if chosen:
        path, variable = Path(chosen).expanduser(), "HOMECOMING_KEY_DIR"
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        path, variable = Path(base).expanduser() / "homecoming", "the default key folder"
    if db_dir is not None and _within(path, db_dir):
        raise ValueError(f"{variable} ({path}) is the database's folder or inside it ({db_dir}); whoever "
                         "copies the data would get the keys with it. Set HOMECOMING_KEY_DIR elsewhere.")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(f"{variable} ({path}) is open to group or others (mode {mode:04o}); "
                         f"run: chmod 700 {path}")
    return path.resolve()


def read_development_keys(config) -> None:
    """Keys missing from the environment come from the development key folder, created on first start."""
    db_dir = database_dir(config.SQLALCHEMY_DATABASE_URI)
    missing = [name for name in KEY_FILES if not getattr(config, name)]
    if not missing:
        return
    config.KEY_DIR = development_key_dir(db_dir)
    for name in missing:
        path = _create_key_file(config.KEY_DIR / KEY_FILES[name])
        text = read_key_file(path, f"{name} in {config.KEY_DIR}", db_dir)
        if name == "DATA_KEY":
            _install_data_keys(config, text, str(path))
        else:
            setattr(config, name, text)


def _create_key_file(path: Path) -> Path:
    import base64
    import secrets

    if path.exists():
        return path
    # Before issue 8 the keys sat in instance/ beside the database: move such a key (the data it
    # encrypts needs it) rather than make a new one, and leave no copy with the data.
    legacy = INSTANCE_DIR / path.name
    content = legacy.read_text().strip() if legacy.exists() else base64.urlsafe_b64encode(
        secrets.token_bytes(32)).decode()
    # Created readable by the owner only from the first byte (write-then-chmod left a window), and
    # never overwritten: O_EXCL fails if another process made it first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as out:
        out.write(content + "\n")
    if legacy.exists():
        legacy.unlink()
    return path


def private_sqlite_file(url: str | None) -> None:
    """Create a SQLite database file readable by its owner only, before the engine first opens it, and
    tighten one left open by an older version. SQLite gives its -wal and -shm files the database file's
    mode, so they follow."""
    db_dir = database_dir(url)
    if db_dir is None:
        return
    from sqlalchemy.engine import make_url

    path = Path(make_url(url).database).expanduser().resolve()
    if not db_dir.is_dir():
        return  # SQLite will say the database cannot be opened; creating folders is not ours to do
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except OSError:
            pass  # absent, or not ours to change: the database file's own mode is what protects it
