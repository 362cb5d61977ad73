"""The sandbox's application registration, its owner login and the tokens it has issued."""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from dataclasses import dataclass, field

from ctctsync.sandbox.clock import SandboxClock

TOKEN_LIFETIME_S = 315_360_000
"""v2 access tokens live about ten years (constant-contact-api.md §1.2)."""
CODE_LIFETIME_S = 600


def _same(given: str, secret: str) -> bool:
    """Constant-time equality of two texts. ``compare_digest`` refuses non-ASCII ``str``
    (a TypeError, i.e. a 500), so compare their UTF-8 bytes."""
    return secrets.compare_digest(given.encode("utf-8", "surrogatepass"), secret.encode())


@dataclass(frozen=True)
class Credentials:
    """Everything a client needs to talk to the sandbox."""

    api_key: str
    """The application's API key (= OAuth client_id)."""
    client_secret: str
    access_token: str
    """A token issued at start-up, valid until revoked."""
    email: str
    """The account owner's login on the authorize page."""
    password: str
    user_name: str
    """The owner's user name as tokeninfo reports it."""
    v3_access_token: str = field(default="", compare=False)
    """A v3 access token (a JWT) with every API scope, issued at start-up: valid 24 h on the
    sandbox clock (``Sandbox.v3_tokens.issue_access_token()`` makes a fresh one). Left out of
    equality: two sandboxes of one seed have the same credentials but distinct tokens."""


@dataclass
class TokenRecord:
    """An issued access token."""

    token: str
    client_id: str
    user_name: str
    issued_ms: int
    revoked: bool = False


@dataclass
class CodeRecord:
    """An unexchanged authorization code."""

    client_id: str
    redirect_uri: str
    issued_ms: int


class AuthStore:
    """Issued tokens and authorization codes of the sandbox's single application."""

    def __init__(self, seed: int, email: str, clock: SandboxClock) -> None:
        rng = random.Random(seed * 31 + 5)
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        api_key = "".join(rng.choice(alphabet) for _ in range(24))
        secret = "".join(rng.choice(alphabet) for _ in range(24))
        password = f"sandbox-{rng.randrange(16**8):08x}"
        user_name = f"sandbox_owner_{seed}"
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenRecord] = {}
        self._codes: dict[str, CodeRecord] = {}
        first = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self._tokens[first] = TokenRecord(first, api_key, user_name, clock.now_ms())
        self.credentials = Credentials(api_key, secret, first, email, password, user_name)

    def issue_token(self) -> str:
        """Issue a new access token for the application; returns it."""
        token = str(uuid.uuid4())
        with self._lock:
            self._tokens[token] = TokenRecord(
                token, self.credentials.api_key, self.credentials.user_name, self.clock.now_ms())
        return token

    def revoke_token(self, token: str) -> bool:
        """Revoke ``token``; returns whether it existed."""
        with self._lock:
            rec = self._tokens.get(token)
            if rec is None:
                return False
            rec.revoked = True
            return True

    def token(self, token: str) -> TokenRecord | None:
        """The live record of ``token`` (None if unknown, revoked or expired)."""
        rec = self._tokens.get(token)
        if rec is None or rec.revoked or self.expires_in(rec) <= 0:
            return None
        return rec

    def expires_in(self, rec: TokenRecord) -> int:
        """Seconds until ``rec`` expires."""
        return TOKEN_LIFETIME_S - (self.clock.now_ms() - rec.issued_ms) // 1000

    def is_known_client(self, client_id: str) -> bool:
        """Whether ``client_id`` is the sandbox application's API key (any text: a
        non-ASCII key is simply unknown, as at CC's gateway)."""
        return _same(client_id, self.credentials.api_key)

    def check_client_secret(self, secret: str) -> bool:
        """Whether ``secret`` is the application's client secret (constant time)."""
        return _same(secret, self.credentials.client_secret)

    def check_login(self, email: str, password: str) -> bool:
        """Whether the owner's email (case-insensitive) and password match."""
        c = self.credentials
        return email.strip().lower() == c.email.lower() and _same(password, c.password)

    def issue_code(self, client_id: str, redirect_uri: str) -> str:
        """A new single-use authorization code."""
        code = secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = CodeRecord(client_id, redirect_uri, self.clock.now_ms())
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str) -> str | None:
        """Exchange ``code`` for a new token; None when unknown, used, expired or mismatched.
        A code is consumed by the first attempt, successful or not."""
        with self._lock:
            rec = self._codes.pop(code, None)
        if rec is None or rec.client_id != client_id or rec.redirect_uri != redirect_uri:
            return None
        if self.clock.now_ms() - rec.issued_ms > CODE_LIFETIME_S * 1000:
            return None
        return self.issue_token()
