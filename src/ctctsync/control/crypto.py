"""Secrets at rest: Fernet for credentials, argon2 for passwords, SHA-256 for API tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

TOKEN_PREFIX = "ctct_"  # noqa: S105 -- a prefix, not a secret

_hasher = PasswordHasher()


class SecretBox:
    """Encrypts and decrypts small secrets (credentials) with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ValueError(
                "the encryption key is not a Fernet key (32 url-safe base64 bytes); create one "
                "with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    def encrypt(self, plaintext: str) -> str:
        """Ciphertext (URL-safe text) of ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext; raises ``ValueError`` if the key does not match."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "stored credentials cannot be decrypted with this encryption key "
                "(was CTCTSYNC_ENCRYPTION_KEY or the key file changed?)"
            ) from None

    def encrypt_json(self, data: dict[str, str]) -> str:
        """Ciphertext of a small mapping of secrets."""
        return self.encrypt(json.dumps(data, sort_keys=True))

    def decrypt_json(self, ciphertext: str | None) -> dict[str, str]:
        """The mapping stored by :meth:`encrypt_json` (empty when nothing is stored)."""
        if not ciphertext:
            return {}
        data = json.loads(self.decrypt(ciphertext))
        return {str(k): str(v) for k, v in data.items()}


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_token() -> tuple[str, str]:
    """A fresh personal API token: ``(plaintext, hash)``. Only the hash is stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return plaintext, hash_api_token(plaintext)


def hash_api_token(plaintext: str) -> str:
    """SHA-256 of a token. Tokens carry 256 random bits, so a fast hash is enough and
    keeps per-request lookups cheap (argon2 is for low-entropy passwords)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())
