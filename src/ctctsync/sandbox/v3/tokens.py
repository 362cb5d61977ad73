"""The v3 token store standing in for CC's Okta authorization server (§1.2).

Access tokens are JWTs (HS256 here; CC's are RS256) carrying the client id (``cid``), the
user (``uid``), the granted scopes (``scp``) and a 24 h expiry on the sandbox clock. They are
verified statelessly by signature and expiry, like CC's, plus a set of revoked token ids. The
signing key derives from the account seed, so a token stays valid across a restart of the
same sandbox (the demo keeps working) while another seed's sandbox refuses it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterable

import jwt

from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.v3.common import Grant

ACCESS_TOKEN_LIFETIME_S = 86_400
"""v3 access tokens live "a static 24 hours" (§1.2)."""
ALL_SCOPES = frozenset(
    {"account_read", "account_update", "contact_data", "campaign_data", "offline_access"}
)
OWNER_PRIVILEGES = frozenset(
    {
        "account:read", "account:update", "contacts:read", "contacts:write",
        "contacts:lists:read", "contacts:lists:write", "campaign:read", "campaign:write",
        "ui:campaign:metrics", "mylibrary:file:read", "mylibrary:folder:read",
    }
)
"""The account owner's privileges (a real owner holds 94; these are the ones that gate what
the sandbox serves, plus MyLibrary's to show that holding them opens no v3 endpoint)."""
ISSUER = "https://identity.constantcontact.com/oauth2/aus1lm3ry9mF7x2Ja0h8"


class TokenStore:
    """Issues and verifies v3 access tokens for the sandbox's application."""

    def __init__(self, seed: int, client_id: str, user_name: str, clock: SandboxClock) -> None:
        self.clock = clock
        self.client_id = client_id
        self.user_name = user_name
        self._key = hashlib.sha256(f"ctctsync-sandbox-v3-{seed}".encode()).hexdigest()
        self._lock = threading.Lock()
        self._revoked: set[str] = set()
        self.privileges: frozenset[str] = OWNER_PRIVILEGES
        """The authorizing user's privileges (tests may narrow them, e.g. a Campaign Creator)."""

    def issue_access_token(self, scopes: Iterable[str] = ALL_SCOPES,
                           client_id: str | None = None) -> str:
        """A new signed access token granting ``scopes``."""
        now = self.clock.now_ms() // 1000
        claims = {
            "ver": 1, "jti": f"AT.{secrets.token_urlsafe(16)}", "iss": ISSUER,
            "aud": "https://api.cc.email", "iat": now, "exp": now + ACCESS_TOKEN_LIFETIME_S,
            "cid": client_id or self.client_id, "uid": self.user_name,
            "scp": sorted(scopes), "sub": self.user_name,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def claims(self, token: str) -> dict[str, object] | None:
        """The token's claims if it is ours, unexpired (sandbox clock) and not revoked."""
        try:
            claims: dict[str, object] = jwt.decode(
                token, self._key, algorithms=["HS256"], audience="https://api.cc.email",
                options={"verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self.clock.now_ms() // 1000:
            return None
        with self._lock:
            if claims.get("jti") in self._revoked:
                return None
        return claims

    def verify(self, token: str) -> Grant | None:
        """What ``token`` grants, or None (unknown, expired or revoked: a 401)."""
        claims = self.claims(token) if token else None
        if claims is None:
            return None
        scp = claims.get("scp")
        scopes = frozenset(s for s in scp if isinstance(s, str)) if isinstance(scp, list) else ()
        return Grant(str(claims.get("cid")), frozenset(scopes), self.privileges)

    def revoke_access_token(self, token: str) -> bool:
        """Revoke an access token; returns whether it was a valid one."""
        claims = self.claims(token)
        if claims is None:
            return False
        with self._lock:
            self._revoked.add(str(claims.get("jti")))
        return True
