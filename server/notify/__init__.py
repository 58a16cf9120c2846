"""Notifications: alerts queued per channel (``outbox``), sent as one digest per recipient per run
(``dispatch``) over e-mail or a signed JSON webhook (``channels``). Creating is separate from sending."""
