"""Encryption of a tenant's stored mail secrets (the SMTP password) with the deployment's key.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a key derived from ``CRM_SECRET_KEY``
(:func:`crm_core.config.secret_key`, at least 32 characters): the database holds the token only, and a
token made under another key does not decrypt. Without the key nothing is encrypted — the caller refuses
to save a password (decision 0031, amendment).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from crm_core.config import SECRET_KEY_MIN_LENGTH, secret_key


class SecretKeyProblem(Exception):
    """No usable ``CRM_SECRET_KEY``: ``message_key`` says which (missing or too short)."""

    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


def _fernet() -> Fernet:
    key = secret_key()
    if key is None:
        raise SecretKeyProblem("mail.settings.no_key")
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise SecretKeyProblem("mail.settings.short_key")
    # any string of enough entropy becomes the 32 bytes Fernet wants; the prefix keeps this use apart
    digest = hashlib.sha256(b"kestrel mail secret\x00" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plain: str) -> str:
    """The Fernet token of ``plain``; raises SecretKeyProblem without a usable key."""
    return _fernet().encrypt(plain.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    """The secret of a stored token; raises SecretKeyProblem (no key) or ValueError (made under another key)."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as error:
        raise ValueError("the stored secret does not decrypt with CRM_SECRET_KEY (was the key changed?)") from error
