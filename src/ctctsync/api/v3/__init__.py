"""Constant Contact API v3: OAuth 2.0 (``oauth``, ``tokens``) and the v3 readers.

v3 is OAuth2 only (24 h JWT access tokens, rotating refresh tokens) and sends no ``api_key``
parameter -- constant-contact-v3-api.md §1.1, §1.2.
"""
