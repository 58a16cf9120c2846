"""Configuration classes. Values come from ``HOMECOMING_*`` environment variables.

Nothing is read at import time: each class reads the environment when it is instantiated, so tests and
the factory can build a configuration after changing the environment.
"""

import os
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
             "RETENTION_BATCH_SIZE")
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


class Config:
    TESTING = False
    DEBUG = False
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}

    def __init__(self):
        self.SECRET_KEY = _env("SECRET_KEY")
        self.DATA_KEY = _env("DATA_KEY")
        # Keys the name-search index (models/search.py); not the data key, so one leaking is not both.
        self.SEARCH_KEY = _env("SEARCH_KEY")
        self.SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL") or self.default_database_url()
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

    def default_database_url(self):
        return f"sqlite:///{INSTANCE_DIR / 'homecoming.sqlite'}"

    def validate(self):
        """Raise ValueError naming what is missing; called by the factory before anything starts."""
        problems = rule_problems(self.RULES) + scheduler_problems(self)
        if problems:
            raise ValueError("Invalid settings: " + "; ".join(problems))


class DevelopmentConfig(Config):
    DEBUG = False  # the reloader would start the in-process scheduler twice; `make run` uses waitress

    def __init__(self):
        super().__init__()
        # The embedded default keeps its keys in instance/, created on first start, so `make run`
        # works from a fresh clone and restarts keep reading the same encrypted data.
        self.SECRET_KEY = self.SECRET_KEY or _instance_secret("secret.key")
        self.DATA_KEY = self.DATA_KEY or _instance_secret("data.key")
        self.SEARCH_KEY = self.SEARCH_KEY or _instance_secret("search.key")


class TestingConfig(Config):
    TESTING = True

    def __init__(self):
        super().__init__()
        self.SECRET_KEY = "test-secret-key"
        # A fixed, public key: test data is fictional, never real.
        self.DATA_KEY = "dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTAwMDA="
        self.SEARCH_KEY = "dGVzdC1zZWFyY2gta2V5LXRlc3Qtc2VhcmNoLWtleTA="
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
        self.BASE_URL = "http://homecoming.test"


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


def _instance_secret(filename):
    import base64
    import secrets

    path = INSTANCE_DIR / filename
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        # Created readable by the owner only from the first byte (write-then-chmod left a window), and
        # never overwritten: O_EXCL fails if another process made it first.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return path.read_text().strip()
