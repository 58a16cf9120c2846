"""``flask users create|list|set-password``."""

import sys

import click
from flask.cli import AppGroup

from models import User, audit, db
from models.vocab import ROLES

users = AppGroup("users", help="Manage user accounts.")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="password")
    return password


def at_most(length: int, param, value: str | None) -> str | None:
    """The column's size, checked here: PostgreSQL refuses a longer value with a traceback."""
    if value is not None and len(value) > length:
        raise click.BadParameter(f"at most {length} characters (got {len(value)}).", param=param)
    return value


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--display-name", default=None, callback=lambda ctx, param, value: at_most(120, param, value))
@click.option("--email", default=None, callback=lambda ctx, param, value: at_most(254, param, value))
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def create(username, role, display_name, email, password_stdin):
    """Create a user; the password is prompted for (or read from stdin)."""
    if not 1 <= len(username) <= 64 or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise click.BadParameter("1 to 64 letters, digits, '.', '-' or '_'", param_hint="USERNAME")
    if db.session.execute(db.select(User.id).where(User.username == username)).first():
        raise click.ClickException(f"A user named '{username}' already exists.")
    user = User(username=username, role=role, display_name=display_name, email=email)
    user.set_password(_read_password(password_stdin))
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
