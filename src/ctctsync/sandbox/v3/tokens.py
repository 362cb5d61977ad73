"""The v3 token store standing in for CC's Okta authorization server (§1.2).

Access tokens are JWTs (HS256 here; CC's are RS256) carrying the client id (``cid``), the
user (``uid``), the granted scopes (``scp``) and a 24 h expiry on the sandbox clock. They are
verified statelessly by signature and expiry, like CC's, plus a set of revoked token ids. The
signing key derives from the account seed, so a token stays valid across a restart of the
same sandbox (the demo keeps working) while another seed's sandbox refuses it.

Beside access tokens the store keeps the state of the grants (all in memory, on the sandbox
clock): single-use authorization codes (with their PKCE challenge), refresh-token chains
(rotating or long-lived, 180 days idle expiry) and device authorizations (RFC 8628). Its
grant methods raise :class:`OAuthError`, which ``v3.oauth`` turns into the OAuth error body.

Interface for other code (``Sandbox.v3_tokens``):

* ``issue_access_token(scopes)`` -> a JWT; ``issue_tokens(scopes)`` -> a :class:`TokenSet`
  (with a refresh token when ``offline_access`` is among the scopes);
* ``verify(token)`` -> :class:`Grant` or None; ``claims(token)``;
* ``revoke(token)`` (access or refresh token), ``revoke_access_token(token)``;
* ``settings`` (:class:`ApplicationSettings`: refresh-token mode, registered redirect URIs),
  ``privileges`` (the authorizing user's), ``token_limiter`` (the token endpoint's 1/s);
* the grants: ``issue_code``/``redeem_code``, ``refresh``, ``start_device``/``decide_device``/
  ``poll_device``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt

from ctctsync.sandbox.clock import SandboxClock
from ctctsync.sandbox.ratelimit import RateLimiter
from ctctsync.sandbox.v3.common import Grant

ACCESS_TOKEN_LIFETIME_S = 86_400
"""v3 access tokens live "a static 24 hours" (§1.2)."""
ALL_SCOPES = frozenset(
    {"account_read", "account_update", "contact_data", "campaign_data", "offline_access"}
)
"""The API scopes of §1.2 (``offline_access`` asks for a refresh token)."""
SCOPE_DESCRIPTIONS: dict[str, str] = {
    # the API scopes' wording is the contract's (securityDefinitions); the others are OIDC's
    "account_read": "Read account data.",
    "account_update": "Modify account data.",
    "contact_data": "Read or modify contact data.",
    "campaign_data": "Read or modify email campaign data.",
    "offline_access": "Stay connected: keep access while you are away (a refresh token).",
    "openid": "Know who you are (an OpenID Connect ID token).",
}
KNOWN_SCOPES = frozenset(SCOPE_DESCRIPTIONS)
"""What a client may ask for: :data:`ALL_SCOPES` plus ``openid``. ``billing_data`` of the
contract gates no endpoint the sandbox serves, so asking for it is an ``invalid_scope``."""

OWNER_PRIVILEGES = frozenset(
    {
        "account:read", "account:update", "contacts:read", "contacts:write",
        "contacts:lists:read", "contacts:lists:write", "campaign:read", "campaign:write",
        "ui:campaign:metrics", "mylibrary:file:read", "mylibrary:folder:read",
    }
)
"""The account owner's privileges (a real owner holds 94; these are the ones that gate what
the sandbox serves, plus MyLibrary's to show that holding them opens no v3 endpoint)."""
CAMPAIGN_CREATOR_PRIVILEGES = frozenset(
    {"account:read", "campaign:read", "campaign:write",
     "mylibrary:file:read", "mylibrary:folder:read"}
)
"""A "Campaign Creator" user: campaigns yes, contacts and reports no, so their calls are 403
(§1.2, DOC:user_privileges.html). UNCONFIRMED: whether the role holds ``account:read``; kept
because the role signs in and sees its account."""
PRIVILEGE_ROLES: dict[str, frozenset[str]] = {
    "account_owner": OWNER_PRIVILEGES,
    "campaign_creator": CAMPAIGN_CREATOR_PRIVILEGES,
}
"""Named privilege sets the admin API accepts as ``{"role": ...}``."""

ISSUER = "https://identity.constantcontact.com/oauth2/aus1lm3ry9mF7x2Ja0h8"
AUDIENCE = "https://api.cc.email"

REFRESH_IDLE_LIFETIME_S = 180 * 86_400
"""Refresh tokens (rotating or long-lived) expire when unused for 180 days (§1.2)."""
CODE_LIFETIME_S = 600
"""UNCONFIRMED: CC does not say how long an authorization code lives; chose 10 minutes, as
the v2 sandbox server, long enough for a person to sign in and consent."""
ID_TOKEN_LIFETIME_S = 3_600
"""UNCONFIRMED: the ID token's lifetime; chose Okta's default of one hour."""
DEVICE_CODE_LIFETIME_S = 600
"""UNCONFIRMED (§1.2, §7.1): the device code's ``expires_in``; chose 600 s (Okta's default)."""
DEVICE_POLL_INTERVAL_S = 5
"""UNCONFIRMED (§1.2, §7.1): the device flow's ``interval``; chose RFC 8628's default 5 s."""
SLOW_DOWN_STEP_S = 5
"""A ``slow_down`` answer adds 5 s to the device's interval for good (RFC 8628 §3.5)."""
TOKEN_ENDPOINT_QPS = 1
"""The token endpoint allows 1 request/second per client id (§1.2, CC staff)."""

RefreshTokenMode = Literal["rotating", "long_lived"]
REFRESH_TOKEN_MODES: tuple[RefreshTokenMode, ...] = ("rotating", "long_lived")
DeviceDecision = Literal["pending", "allowed", "denied"]

_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, no padding
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words by accident (RFC 8628 §6.1)
_INVALID_REFRESH = "The refresh token is invalid or expired."  # CC's wording (§1.2)
_INVALID_CODE = "The authorization code is invalid or has expired."


class OAuthError(Exception):
    """A refusal in OAuth's shape: ``{"error", "error_description"}`` with ``status``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of ``verifier``: base64url(SHA-256), unpadded (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_challenge(challenge: str) -> bool:
    """Whether ``challenge`` can be an S256 challenge (43 base64url characters)."""
    return _CHALLENGE.fullmatch(challenge) is not None


def parse_scopes(text: str) -> tuple[str, ...]:
    """Space-separated scopes, in order, without repeats; unknown ones are ``invalid_scope``,
    none at all too (UNCONFIRMED: Okta's custom servers have no default scope, chose to
    require one)."""
    scopes = tuple(dict.fromkeys(text.split()))
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise OAuthError("invalid_scope", f"The requested scope is invalid: {unknown[0]}.")
    if not scopes:
        raise OAuthError("invalid_scope", "The 'scope' parameter must be provided.")
    return scopes


@dataclass
class ApplicationSettings:
    """What CC's developer portal holds for the sandbox's application (§1.2)."""

    client_id: str
    refresh_token_mode: RefreshTokenMode = "rotating"  # noqa: S105 -- a mode, not a secret
    """``rotating`` (default: every refresh returns a new token and voids the old ones) or
    ``long_lived`` (the same refresh token comes back each time)."""
    redirect_uris: set[str] = field(default_factory=set)
    """Registered redirect URIs, matched exactly."""
    allow_loopback_redirects: bool = True
    """Also accept any ``http`` redirect URI on a loopback host, whatever its port and path
    (RFC 8252 §7.3), so a local client on a random port needs no registration. A sandbox
    convenience; CC matches registered URIs only."""

    def is_redirect_allowed(self, uri: str) -> bool:
        """Whether ``uri`` is a redirect URI the server may send the browser to."""
        if uri in self.redirect_uris:
            return True
        if not self.allow_loopback_redirects or "#" in uri:
            return False
        return re.match(r"http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|\?|$)", uri) is not None


@dataclass(frozen=True)
class TokenSet:
    """A token endpoint's success answer (§1.2)."""

    access_token: str
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    id_token: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{token_type, expires_in, access_token, scope[, refresh_token][, id_token]}``:
        ``refresh_token`` only with ``offline_access``, ``id_token`` only with ``openid``."""
        body: dict[str, Any] = {
            "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": self.access_token, "scope": " ".join(self.scopes)}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    nonce: str | None
    issued_ms: int


@dataclass
class _Chain:
    """One grant's refresh tokens: the current one and what it was issued for."""

    client_id: str
    scopes: tuple[str, ...]
    public: bool
    """Issued without a client secret (PKCE, device): refreshing needs no secret either."""
    current: str
    last_used_ms: int
    access_ids: set[str] = field(default_factory=set)
    revoked: bool = False


@dataclass
class DeviceAuthorization:
    """One device-flow request (RFC 8628) and its progress."""

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    issued_ms: int
    interval_s: int = DEVICE_POLL_INTERVAL_S
    last_poll_ms: int | None = None
    decision: DeviceDecision = "pending"
    redeemed: bool = False

    def expired(self, now_ms: int) -> bool:
        """Whether the device code's ``expires_in`` has passed."""
        return now_ms - self.issued_ms >= DEVICE_CODE_LIFETIME_S * 1000


def normalize_user_code(text: str) -> str:
    """A user code as typed (any case, dashes or spaces) in its stored form."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


class TokenStore:
    """Issues and verifies v3 tokens for the sandbox's application; keeps the grants."""

    def __init__(self, seed: int, client_id: str, user_name: str, clock: SandboxClock,
                 *, token_qps_limit: int | None = TOKEN_ENDPOINT_QPS) -> None:
        self.clock = clock
        self.client_id = client_id
        self.user_name = user_name
        self._key = hashlib.sha256(f"ctctsync-sandbox-v3-{seed}".encode()).hexdigest()
        self._lock = threading.Lock()
        self._revoked: set[str] = set()
        self.privileges: frozenset[str] = OWNER_PRIVILEGES
        """The authorizing user's privileges (tests may narrow them, e.g. a Campaign Creator);
        checked on every call, so a change applies to tokens already issued."""
        self.settings = ApplicationSettings(client_id)
        """The application's refresh-token mode and redirect URIs."""
        self.token_limiter = RateLimiter(clock, token_qps_limit, None)
        """The token endpoint's own limit per client id (``configure(qps_limit=...)``)."""
        self._codes: dict[str, _Code] = {}
        self._chains: dict[str, _Chain] = {}
        self._refresh: dict[str, str] = {}  # every refresh token ever issued -> its chain
        self._devices: dict[str, DeviceAuthorization] = {}
        self._user_codes: dict[str, str] = {}  # user code -> device code

    def _now_s(self) -> int:
        return self.clock.now_ms() // 1000

    # ------------------------------------------------------------------ access and ID tokens
    def _mint_access(self, scopes: Iterable[str], client_id: str | None) -> tuple[str, str]:
        now = self._now_s()
        jti = f"AT.{secrets.token_urlsafe(16)}"
        claims = {
            "ver": 1, "jti": jti, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME_S, "cid": client_id or self.client_id,
            "uid": self.user_name, "scp": sorted(scopes), "sub": self.user_name,
        }
        return jwt.encode(claims, self._key, algorithm="HS256"), jti

    def issue_access_token(self, scopes: Iterable[str] = ALL_SCOPES,
                           client_id: str | None = None) -> str:
        """A new signed access token granting ``scopes`` (no refresh token)."""
        return self._mint_access(scopes, client_id)[0]

    def _id_token(self, client_id: str, nonce: str | None) -> str:
        now = self._now_s()
        claims: dict[str, Any] = {
            "ver": 1, "jti": f"ID.{secrets.token_urlsafe(16)}", "iss": ISSUER, "aud": client_id,
            "sub": self.user_name, "iat": now, "exp": now + ID_TOKEN_LIFETIME_S,
            "auth_time": now, "amr": ["pwd"]}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self._key, algorithm="HS256")

    def issue_tokens(self, scopes: Iterable[str] = ALL_SCOPES, *, client_id: str | None = None,
                     public: bool = False, nonce: str | None = None) -> TokenSet:
        """What a successful grant returns: an access token, a refresh token (a new chain)
        when ``offline_access`` is granted, an ID token when ``openid`` is."""
        granted = tuple(dict.fromkeys(scopes))
        cid = client_id or self.client_id
        access, jti = self._mint_access(granted, cid)
        refresh = None
        if "offline_access" in granted:
            refresh = secrets.token_urlsafe(32)
            chain = _Chain(cid, granted, public, refresh, self.clock.now_ms(), {jti})
            with self._lock:
                self._chains[refresh] = chain  # a chain is keyed by its first token
                self._refresh[refresh] = refresh
        id_token = self._id_token(cid, nonce) if "openid" in granted else None
        return TokenSet(access, granted, refresh, id_token)

    def claims(self, token: str) -> dict[str, object] | None:
        """The token's claims if it is ours, unexpired (sandbox clock) and not revoked."""
        try:
            claims: dict[str, object] = jwt.decode(
                token, self._key, algorithms=["HS256"], audience=AUDIENCE,
                options={"verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self._now_s():
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

    # ------------------------------------------------------------------ revocation
    def revoke_access_token(self, token: str) -> bool:
        """Revoke an access token; returns whether it was a valid one."""
        claims = self.claims(token)
        if claims is None:
            return False
        with self._lock:
            self._revoked.add(str(claims.get("jti")))
        return True

    def revoke_refresh_token(self, token: str, client_id: str | None = None) -> bool:
        """Revoke the chain of a live refresh token and the access tokens issued from it
        (RFC 7009 §2.1); returns whether it was live (and ``client_id``'s, if given)."""
        with self._lock:
            chain = self._live_chain(token)
            if chain is None or (client_id is not None and chain.client_id != client_id):
                return False
            chain.revoked = True
            self._revoked.update(chain.access_ids)
            return True

    def revoke(self, token: str, client_id: str | None = None) -> bool:
        """Revoke an access or refresh token (RFC 7009); returns whether one was revoked."""
        claims = self.claims(token)
        if claims is not None:
            if client_id is not None and claims.get("cid") != client_id:
                return False
            return self.revoke_access_token(token)
        return self.revoke_refresh_token(token, client_id)

    # ------------------------------------------------------------------ authorization code
    def issue_code(self, client_id: str, redirect_uri: str, scopes: Iterable[str],
                   code_challenge: str | None = None, nonce: str | None = None) -> str:
        """A single-use authorization code for a consented authorize request."""
        code = secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        record = _Code(client_id, redirect_uri, tuple(scopes), code_challenge, nonce, now)
        with self._lock:
            # forget codes nobody exchanged in time: a long-running sandbox must not grow
            self._codes = {k: c for k, c in self._codes.items()
                           if now - c.issued_ms <= CODE_LIFETIME_S * 1000}
            self._codes[code] = record
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str,
                    code_verifier: str | None, *, authenticated: bool) -> TokenSet:
        """Exchange ``code`` once. The first attempt consumes it, successful or not, so a
        second one (or a retry after a wrong verifier) is ``invalid_grant``. A code issued
        without a PKCE challenge needs an authenticated (secret-bearing) client."""
        with self._lock:
            rec = self._codes.pop(code, None)
        if rec is None or rec.client_id != client_id \
                or self.clock.now_ms() - rec.issued_ms > CODE_LIFETIME_S * 1000:
            raise OAuthError("invalid_grant", _INVALID_CODE)
        if rec.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "The 'redirect_uri' does not match the "
                             "redirection URI used in the authorization request.")
        if rec.challenge is None:
            if not authenticated:
                raise OAuthError("invalid_client", "Client authentication failed: "
                                 "the client_secret is required.", 401)
        elif not code_verifier:
            raise OAuthError("invalid_request", "PKCE verification failed: the "
                             "'code_verifier' parameter is required.")
        elif _VERIFIER.fullmatch(code_verifier) is None \
                or not secrets.compare_digest(pkce_challenge(code_verifier), rec.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed.")
        return self.issue_tokens(rec.scopes, client_id=client_id, public=not authenticated,
                                 nonce=rec.nonce)

    # ------------------------------------------------------------------ refresh tokens
    def _live_chain(self, token: str) -> _Chain | None:
        # caller holds the lock; a rotated-away, revoked or idle-expired token is not live
        chain = self._chains.get(self._refresh.get(token, ""))
        if chain is None or chain.revoked or chain.current != token:
            return None
        if self.clock.now_ms() - chain.last_used_ms > REFRESH_IDLE_LIFETIME_S * 1000:
            return None
        return chain

    def refresh(self, refresh_token: str, client_id: str, *, authenticated: bool,
                scopes: Iterable[str] | None = None) -> TokenSet:
        """A new access token from a live refresh token. Rotating mode: a new refresh token
        replaces the chain's (every earlier one is then ``invalid_grant``); long-lived: the
        same one comes back. Either way the 180-day idle clock restarts. ``scopes`` may
        narrow the grant (RFC 6749 §6)."""
        wanted = tuple(dict.fromkeys(scopes)) if scopes is not None else None
        with self._lock:
            chain = self._live_chain(refresh_token)
            if chain is None or chain.client_id != client_id:
                raise OAuthError("invalid_grant", _INVALID_REFRESH)
            if not chain.public and not authenticated:
                raise OAuthError("invalid_client", "Client authentication failed: "
                                 "the client_secret is required.", 401)
            if wanted is not None and not set(wanted) <= set(chain.scopes):
                raise OAuthError("invalid_scope", "The requested scope exceeds the grant.")
            granted = wanted or chain.scopes
            if self.settings.refresh_token_mode == "rotating":  # noqa: S105 -- a mode
                chain.current = secrets.token_urlsafe(32)
                self._refresh[chain.current] = self._refresh[refresh_token]
            chain.last_used_ms = self.clock.now_ms()
            current = chain.current
        access, jti = self._mint_access(granted, client_id)
        with self._lock:
            chain.access_ids.add(jti)
        id_token = self._id_token(client_id, None) if "openid" in granted else None
        return TokenSet(access, granted, current, id_token)

    # ------------------------------------------------------------------ device flow
    def start_device(self, client_id: str, scopes: Iterable[str]) -> DeviceAuthorization:
        """A new device authorization (RFC 8628 §3.2) waiting for the user's decision."""
        now = self.clock.now_ms()
        with self._lock:
            # forget devices expired a day ago (until then a poll still says expired_token)
            for old in [d for d in self._devices.values() if d.expired(now - 86_400_000)]:
                del self._devices[old.device_code], self._user_codes[old.user_code]
            user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            while user_code in self._user_codes:
                user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            device = DeviceAuthorization(str(uuid.uuid4()), user_code, client_id,
                                         tuple(scopes), now)
            self._devices[device.device_code] = device
            self._user_codes[user_code] = device.device_code
        return device

    def pending_device(self, user_code: str) -> DeviceAuthorization | None:
        """The unexpired, undecided device authorization of ``user_code`` (as typed)."""
        with self._lock:
            device = self._devices.get(self._user_codes.get(normalize_user_code(user_code), ""))
        if device is None or device.decision != "pending" or device.expired(self.clock.now_ms()):
            return None
        return device

    def decide_device(self, user_code: str, allow: bool) -> bool:
        """Record the user's Allow/Deny for ``user_code``; False if it is not pending."""
        device = self.pending_device(user_code)
        if device is None:
            return False
        with self._lock:
            device.decision = "allowed" if allow else "denied"
        return True

    def poll_device(self, device_code: str, client_id: str) -> TokenSet:
        """One poll of the token endpoint (RFC 8628 §3.4/3.5): the tokens once the user
        allowed; else ``authorization_pending``, ``slow_down`` (polled sooner than the
        interval, which then grows by 5 s), ``access_denied`` or ``expired_token``."""
        now = self.clock.now_ms()
        with self._lock:
            device = self._devices.get(device_code)
            if device is None or device.client_id != client_id or device.redeemed:
                raise OAuthError("invalid_grant", "The device code is invalid or has expired.")
            if device.expired(now):
                raise OAuthError("expired_token", "The device code has expired.")
            too_soon = device.last_poll_ms is not None \
                and now - device.last_poll_ms < device.interval_s * 1000
            device.last_poll_ms = now
            if device.decision == "denied":
                raise OAuthError("access_denied", "The resource owner denied the request.")
            if device.decision == "pending":
                if too_soon:
                    device.interval_s += SLOW_DOWN_STEP_S
                    raise OAuthError("slow_down", "The client is polling too quickly; "
                                     f"poll every {device.interval_s} seconds.")
                raise OAuthError("authorization_pending",
                                 "The device authorization is pending. Please try again later.")
            device.redeemed = True
        return self.issue_tokens(device.scopes, client_id=client_id, public=True)
