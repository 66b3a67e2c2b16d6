"""The web console at ``/console``: server-rendered pages over the operations layer (docs/console.md).

Every page calls operations as the signed-in principal through the server's operation runner: the same
validation, authorisation and audit record as an API call. Nothing here reads or writes storage; sessions
live in ``auth/sessions.py``.
"""
