"""Constant Contact API v3: OAuth 2.0 (``oauth``, ``tokens``) and the v3 readers.

v3 is OAuth2 only (24 h JWT access tokens, rotating refresh tokens) and sends no ``api_key``
parameter -- constant-contact-v3-api.md §1.1, §1.2.

Readers: ``extract`` (the entry points ``extract``, ``sent_campaigns`` and
``scan_campaigns``, with v2's signatures, picked by ``ctctsync.api.readers``), ``campaigns``
(the sent campaigns and their stats scan: which campaigns' tracking moved), ``endpoints``
(v3 facts: date format, tracking reports, roles, statuses), ``shape`` (v3 records -> rows
of a table's v3 columns), ``export`` (the bulk contact export). This module imports none of
them, so importing one (``oauth`` for a login) loads nothing else.
"""
