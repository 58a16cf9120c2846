"""The two ways a digest leaves the server: an e-mail over SMTP and a signed JSON webhook.

A digest is built only from what is safe to send: the case code, the rule, the severity, the due date
and a link to the child's page. Never a child's name, village, notes or restricted field; those stay
behind the login at the end of the link.
"""

import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage

from flask_babel import format_date, gettext, ngettext
from flask_babel import lazy_gettext as _l

from server.i18n import in_language

SIGNATURE_HEADER = "X-Homecoming-Signature"
DELIVERY_HEADER = "X-Homecoming-Delivery"

RULE_TEXT = {
    "danger_reported": _l("DANGER REPORTED at a visit: consider the 'missing' transition"),
    "missed_in_row": _l("visits missed in a row"),
    "closure_eligible": _l("minimum follow-up reached: closure may be proposed"),
    "reception_warn": _l("reception stay nearing its limit"),
    "reception_overdue": _l("reception stay past its limit"),
    "reception_escalated": _l("reception stay well past its limit"),
    "consent_adult": _l("consent to seek again from the child as an adult"),
}
KIND_TEXT = {"visit": _l("visit"), "plan_review": _l("plan review"), "assessment": _l("assessment")}
LEVEL_TEXT = {"due_soon": _l("%(kind)s due soon"), "due": _l("%(kind)s due today"),
              "overdue": _l("%(kind)s overdue"), "escalated": _l("%(kind)s escalated")}
SEVERITY_TEXT = {"urgent": _l("URGENT"), "warning": _l("WARNING"), "info": _l("INFO")}


def rule_words(rule: str) -> str:
    """An alert's rule in the reader's language: "visit overdue", "plan review due soon"."""
    if rule in RULE_TEXT:
        return str(RULE_TEXT[rule])
    for level, text in LEVEL_TEXT.items():
        kind = rule.removesuffix(f"_{level}")
        if kind != rule and kind in KIND_TEXT:
            return str(text) % {"kind": KIND_TEXT[kind]}
    return rule.replace("_", " ")


class SendFailed(Exception):
    """The channel did not take the message; the rows stay pending and are retried."""


@dataclass(frozen=True)
class DigestLine:
    alert_id: str
    case_code: str
    rule: str
    severity: str
    due_on: str | None
    link: str

    def as_json(self) -> dict:
        return {"alert_id": self.alert_id, "case_code": self.case_code, "rule": self.rule,
                "severity": self.severity, "due_on": self.due_on, "link": self.link}


@dataclass(frozen=True)
class Digest:
    digest_id: str
    recipient: str
    email: str | None
    lines: list[DigestLine]
    sent_at: str
    language: str | None = None  # the recipient's (User.language); None: English

    @property
    def subject(self) -> str:
        urgent = sum(1 for line in self.lines if line.severity == "urgent")
        with in_language(self.language):
            count = ngettext("%(num)d alert", "%(num)d alerts", len(self.lines))
            return gettext("Homecoming: %(count)s", count=count) + (
                " " + gettext("(%(num)d URGENT)", num=urgent) if urgent else "")

    def text(self) -> str:
        with in_language(self.language):
            rows = [ngettext("%(num)d alert for %(username)s:", "%(num)d alerts for %(username)s:", len(self.lines),
                             username=self.recipient), ""]
            for line in self.lines:
                what = rule_words(line.rule)
                if line.due_on:
                    what += " " + gettext("(due %(day)s)", day=format_date(date.fromisoformat(line.due_on), "d MMM y"))
                rows.append(gettext("[%(severity)s] case %(code)s: %(what)s", what=what, code=line.case_code,
                                    severity=SEVERITY_TEXT.get(line.severity, line.severity.upper()))
                            + f"\n    {line.link}")
            rows += ["", gettext("Sign in to see the case. This message holds no personal details by design.")]
            return "\n".join(rows)

    def payload(self) -> dict:
        return {"digest_id": self.digest_id, "recipient": self.recipient, "sent_at": self.sent_at,
                "alerts": [line.as_json() for line in self.lines]}


# HOMECOMING_SMTP_SECURITY: "starttls" upgrades the connection when the server offers STARTTLS
# (opportunistic unless HOMECOMING_SMTP_REQUIRE_TLS), "ssl" is TLS from the first byte (SMTPS, port
# 465), "none" never encrypts (a relay on the same host). A digest holds no name, but case codes, a
# "danger reported" line and who follows which case are still worth keeping off the wire.
SMTP_SECURITY = ("starttls", "ssl", "none")


def _tls_context(config) -> ssl.SSLContext:
    """The system's trusted authorities, or a private CA's file; certificates and host names are
    always checked: a mail server that cannot prove who it is gets nothing, not a plain fallback."""
    return ssl.create_default_context(cafile=config.get("SMTP_CA_FILE") or None)


def send_email(digest: Digest, config) -> None:
    message = EmailMessage()
    message["From"] = config["SMTP_FROM"]
    message["To"] = digest.email
    message["Subject"] = digest.subject
    message["Message-ID"] = f"<{digest.digest_id}@homecoming>"
    message.set_content(digest.text())
    security = config.get("SMTP_SECURITY") or "starttls"
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT_SECONDS"]
    try:
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(config))
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            encrypted = security == "ssl"
            if security == "starttls":
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=_tls_context(config))
                    smtp.ehlo()
                    encrypted = True
            if not encrypted and config.get("SMTP_REQUIRE_TLS"):
                raise SendFailed("tls_unavailable: the mail server offers no TLS and HOMECOMING_SMTP_REQUIRE_TLS is set")
            if config.get("SMTP_USERNAME"):
                if not encrypted:  # a password never crosses the network in clear
                    raise SendFailed("tls_unavailable: the mail server offers no TLS; not sending the SMTP password")
                smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:  # ssl.SSLError (a bad certificate) is an OSError
        raise SendFailed(type(exc).__name__) from exc


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(digest: Digest, config) -> None:
    body = json.dumps(digest.payload(), separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(config["WEBHOOK_URL"], data=body, method="POST", headers={
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(config["WEBHOOK_SECRET"], body),
        DELIVERY_HEADER: digest.digest_id,
    })
    try:
        with urllib.request.urlopen(request, timeout=config["SMTP_TIMEOUT_SECONDS"]) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"HTTP {exc.code}") from exc
    except (OSError, urllib.error.URLError) as exc:
        raise SendFailed(type(exc).__name__) from exc


SENDERS = {"email": send_email, "webhook": send_webhook}
