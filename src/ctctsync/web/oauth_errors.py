"""Plain words for the errors Constant Contact's authorization server sends back to the
OAuth callback (RFC 6749 §4.1.2.1), shown instead of the bare error code."""

from __future__ import annotations

OAUTH_ERRORS: dict[str, str] = {
    "access_denied": (
        "Deny was chosen on Constant Contact's page, so ctctsync received no access to the "
        "account. Nothing was stored."
    ),
    "invalid_scope": (
        "Constant Contact would not grant the access ctctsync asks for. The application "
        "registered in Constant Contact's developer portal may not allow it; an "
        "administrator can check the application's settings."
    ),
    "unauthorized_client": (
        "Constant Contact does not allow this application to ask for access this way. An "
        "administrator should check the application's client id and redirect URI."
    ),
    "invalid_request": (
        "Constant Contact could not read the authorization request. An administrator "
        "should check the application's client id and redirect URI."
    ),
    "unsupported_response_type": (
        "Constant Contact refused the kind of authorization ctctsync asked for. An "
        "administrator should check the application's settings."
    ),
    "server_error": (
        "Constant Contact could not complete the authorization because of a problem on its "
        "side. Try again in a few minutes."
    ),
    "temporarily_unavailable": (
        "Constant Contact is busy or down for maintenance. Try again in a few minutes."
    ),
}
"""What each error of the OAuth 2.0 authorization response (RFC 6749 §4.1.2.1) means for
the person who was sent back, in plain words."""


def explain_oauth_error(error: str) -> str:
    """Plain words for an ``error`` Constant Contact sent back to the callback."""
    return OAUTH_ERRORS.get(
        error, "Constant Contact ended the authorization without granting access."
    )
