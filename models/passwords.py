"""The password policy: one function the web, the API and the command line all ask.

Length alone let through ``password123`` and the username itself. The list of common passwords is
``common_passwords.txt`` beside this module: the 19,640 passwords Django ships
(django/contrib/auth/common-passwords.txt.gz, Django 5.2, BSD licence), themselves taken from Royce
Williams' list of the most common passwords in public breaches
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), lower-cased and deduplicated.
"""

import functools
from pathlib import Path

MIN_PASSWORD = 10
MAX_PASSWORD = 256
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@functools.cache
def common_passwords() -> frozenset[str]:
    return frozenset(line.strip() for line in COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
                     if line.strip())


def password_problems(password: str, username: str | None = None) -> list[str]:
    """What is wrong with a password a person chose, in words to show them (empty when nothing)."""
    if len(password) < MIN_PASSWORD:
        return [f"Use at least {MIN_PASSWORD} characters."]
    if len(password) > MAX_PASSWORD:
        return [f"Use at most {MAX_PASSWORD} characters."]
    lowered = password.lower()
    problems = []
    if username and len(username) >= 3 and username.lower() in lowered:
        problems.append("Do not use your username in your password.")
    if lowered in common_passwords() or lowered.strip("0123456789!. ") in common_passwords():
        problems.append("This password is on the list of the most common passwords; choose another.")
    return problems
