"""Command-line tools, run as ``flask --app wsgi <group> <command>``."""


def register_commands(app):
    from server.cli import demo, serve, users

    app.cli.add_command(users.users)
    app.cli.add_command(demo.demo)
    app.cli.add_command(serve.serve)

    from server.cli import simulate

    app.cli.add_command(simulate.sync_group)

    from server.cli import devices

    app.cli.add_command(devices.devices)

    from server.cli import alerts

    app.cli.add_command(alerts.alerts)
    app.cli.add_command(alerts.scheduler)

    from server.cli import retention

    app.cli.add_command(retention.retention)

    from server.cli import search

    app.cli.add_command(search.search)
    from server.cli import keys

    app.cli.add_command(keys.keys)

    from server.cli import backup

    app.cli.add_command(backup.backup)
