"""``flask users create|list|reset-password``."""

import secrets
import sys

import click
from flask.cli import AppGroup

from models import User, audit, db
from models.accounts import new_user_problems
from models.passwords import password_problems
from models.vocab import ROLES

users = AppGroup("users", help="Manage user accounts.")


def _read_password(password_stdin: bool, username: str) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if problems := password_problems(password, username):
        raise click.BadParameter(" ".join(problems), param_hint="password")
    return password


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--display-name", default=None)
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def create(username, role, display_name, email, password_stdin):
    """Create a user; the password is prompted for (or read from stdin)."""
    problems = new_user_problems(username, role, display_name, email)
    if problems:
        raise click.ClickException("; ".join(f"{field}: {' '.join(messages)}" for field, messages in problems.items()))
    user = User(username=username, role=role, display_name=display_name, email=email)
    user.set_password(_read_password(password_stdin, username))
    db.session.add(user)
    db.session.flush()
    audit("user.create", target=username, role=role, via="cli")
    db.session.commit()
    click.echo(f"Created {role} '{username}'.")


@users.command("list")
def list_users():
    """List users with their role and whether they are active."""
    rows = db.session.execute(db.select(User).order_by(User.username)).scalars().all()
    for user in rows:
        state = "active" if user.active else "disabled"
        last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "never"
        click.echo(f"{user.username:<24} {user.role:<11} {state:<9} last login {last}")
    if not rows:
        click.echo("No users yet.")


@users.command("reset-password")
@click.argument("username")
def reset_password(username):
    """Give USERNAME a new one-time password (shown once) and sign them out everywhere.

    The way back in when the first admin's one-time password, or every admin's password, is lost: it
    needs a shell on the server, which is why it asks no other person. The user chooses their own
    password at the next sign-in.
    """
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user '{username}'. `flask users list` shows who there is.")
    password = secrets.token_urlsafe(12)
    user.set_password(password, temporary=True)  # a new nonce: every session and API token ends
    audit("user.password_reset", target=username, via="cli")
    db.session.commit()
    click.echo(f"New one-time password for '{username}': {password}")
    click.echo("It is shown only now. Sign in at /login and choose your own password (asked at once).")
    if not user.active:
        click.echo(f"Note: '{username}' is disabled; an administrator must enable the account on /users.")
