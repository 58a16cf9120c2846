"""The sync protocol (DESIGN §5): push, pull, merge and conflicts as plain functions over a session,
and the reference field client (``sync.client``). Imports ``models``, never ``server``."""
