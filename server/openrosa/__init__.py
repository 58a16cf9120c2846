"""An OpenRosa 1.0 server, so ODK Collect, KoboCollect and Enketo can be field devices (docs/odk.md).

The server URL a phone is given is ``<BASE_URL>/odk``: ``/odk/formList``, the forms and their
manifests, the per-device caseload file, and ``/odk/submission``. Submissions go through the sync
write path (``sync.push.ingest``); see submission.py.
"""
