"""``flask devices enroll|enroll-odk|list|revoke``: field devices from the command line."""

import json
import uuid

import click
from flask.cli import AppGroup

from models import User, db
from models.errors import FieldErrors
from server.openrosa.collect_settings import collect_settings, odk_server_url, terminal_qr
from server.openrosa.credentials import enroll_odk_device
from sync.devices import enroll_device, find_device, list_devices, revoke_device

devices = AppGroup("devices", help="Enrol, list and revoke field devices.")


@devices.command("enroll")
@click.option("--user", "username", required=True, help="The caseworker who will carry the device.")
@click.option("--label", required=True, help="A name for the device, e.g. 'Tecno phone 3'.")
@click.option("--json", "as_json", is_flag=True, help="Print {device_id, token} as JSON, for scripts.")
def enroll(username, label, as_json):
    """Enrol a device and print its token, once: it is not stored and cannot be shown again."""
    device, token = _enrolled(enroll_device, username, label)
    if as_json:
        click.echo(json.dumps({"device_id": str(device.id), "token": token, "user": username, "label": label}))
    else:
        click.echo(f"Enrolled device {device.id} ('{label}') for {username}.")
        click.echo(f"Token (shown once, enter it on the device): {token}")


@devices.command("enroll-odk")
@click.option("--user", "username", required=True, help="The caseworker who will carry the phone.")
@click.option("--label", required=True, help="A name for the phone, e.g. 'Tecno phone 3, Kitgum office'.")
def enroll_odk(username, label):
    """Enrol an ODK Collect or KoboCollect phone and print, once, its credentials and the settings QR
    code to scan in Collect (Add project, Configure with QR code)."""
    device, login, password = _enrolled(enroll_odk_device, username, label)
    click.echo(f"Enrolled ODK phone {device.id} ('{device.label}') for {username}.")
    click.echo("Shown once: nothing on the server can show this password again.")
    click.echo(f"Server URL: {odk_server_url()}\nUsername:   {login}\nPassword:   {password}\n")
    click.echo(terminal_qr(collect_settings(login, password)))


def _enrolled(enrol, username: str, label: str):
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No user named '{username}'.")
    try:
        enrolled = enrol(user, label, by=None)
    except FieldErrors as exc:
        raise click.ClickException(" ".join(m for msgs in exc.errors.values() for m in msgs)) from None
    db.session.commit()
    return enrolled


@devices.command("list")
def list_command():
    """List devices with their caseworker, last contact and state."""
    rows = list_devices()
    for device in rows:
        seen = device.last_seen_at.isoformat(timespec="minutes") if device.last_seen_at else "never"
        state = ("revoked+wipe" if device.wipe else "revoked") if device.revoked_at else "active"
        click.echo(f"{device.id}  {device.user.username:<20} {state:<12} last seen {seen:<22} {device.label}")
    if not rows:
        click.echo("No devices enrolled yet.")


@devices.command("revoke")
@click.argument("device_id")
@click.option("--wipe", is_flag=True, help="Also tell the device to erase its local data at next contact.")
def revoke(device_id, wipe):
    """Revoke a device: its next sync call is refused (403 device_revoked)."""
    try:
        device = find_device(uuid.UUID(device_id))
    except ValueError:
        device = None
    if device is None:
        raise click.ClickException(f"No device with id '{device_id}'.")
    revoke_device(device, by=None, wipe=wipe)
    db.session.commit()
    click.echo(f"Revoked device {device.id} ('{device.label}'){' with wipe' if device.wipe else ''}.")
