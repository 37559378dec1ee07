"""The credentials the emulated SQL API accepts, checked the way a Snowflake account checks them.

Snowflake's SQL API is stateless: every request carries ``Authorization: Bearer <token>`` and
``X-Snowflake-Authorization-Token-Type`` (``KEYPAIR_JWT``, ``OAUTH`` or
``PROGRAMMATIC_ACCESS_TOKEN``). A key-pair JWT names ``<ACCOUNT>.<USER>.SHA256:<fingerprint>``
as its issuer and is signed (RS256) with the user's private key; the account verifies it with
the public key registered for that user (``ALTER USER ... SET RSA_PUBLIC_KEY``), and refuses an
expired token. An OAuth token or PAT must be one the account issued.

So that a test proves its credentials really work (and that bad ones fail), the emulator
refuses every request whose credentials it cannot verify: register the public key of a
key-pair connection with :meth:`SqlApiAuth.trust_public_key`, or create a token with
:meth:`SqlApiAuth.issue_token`. The error codes and texts follow Snowflake's documented login
errors (390144 for a bad JWT); the exact body of a refused SQL API request is a guess.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

KEYPAIR_JWT = "KEYPAIR_JWT"
OAUTH = "OAUTH"
PAT = "PROGRAMMATIC_ACCESS_TOKEN"
TOKEN_TYPE_HEADER = "x-snowflake-authorization-token-type"  # noqa: S105 - a header name


@dataclass(frozen=True)
class Refusal:
    """Why a request's credentials were refused: the SQL API's 401 body."""

    code: str
    message: str

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def fingerprint(public_key: Any) -> str:
    """``SHA256:<base64 of the DER SubjectPublicKeyInfo digest>``, as Snowflake shows it."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


class SqlApiAuth:
    """Registered public keys and issued tokens; :meth:`check` judges one request's headers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], Any] = {}
        """(USER, fingerprint) -> public key."""
        self._tokens: dict[str, tuple[str, str]] = {}
        """token -> (USER, token type)."""
        self.refused = 0
        """Requests refused so far (a test can prove a bad credential never ran a statement)."""
        self.accepted: deque[dict[str, str]] = deque(maxlen=1024)
        """The latest requests let in: ``TOKEN_TYPE`` and the ``TOKEN`` each carried, so a test can
        prove which credential really reached the wire (as ``logins`` does for the connector)."""

    def trust_public_key(self, user: str, public_key: Any) -> str:
        """Register ``public_key`` (an object or PEM text/bytes) for ``user``; return its fingerprint."""
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        if isinstance(public_key, str):
            public_key = public_key.encode()
        if isinstance(public_key, bytes):
            public_key = load_pem_public_key(public_key)
        key_id = fingerprint(public_key)
        with self._lock:
            self._keys[(user.upper(), key_id)] = public_key
        return key_id

    def issue_token(self, user: str, kind: str = PAT, token: str | None = None) -> str:
        """Issue an OAuth token or PAT for ``user`` (``token`` to choose its text); return it."""
        if kind not in (OAUTH, PAT):
            raise ValueError(f"kind must be {OAUTH} or {PAT}")
        value = token or secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[value] = (user.upper(), kind)
        return value

    def check(self, headers: Mapping[str, str]) -> Refusal | None:
        """``None`` if the request's credentials are good, else why they are not."""
        refusal, kind, token = self._judge(headers)
        with self._lock:
            if refusal is not None:
                self.refused += 1
            else:
                self.accepted.append({"TOKEN_TYPE": kind, "TOKEN": token})
        return refusal

    def _judge(self, headers: Mapping[str, str]) -> tuple[Refusal | None, str, str]:
        """Why the request's credential is refused (``None``: it is good), its type and token."""
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Refusal("390101", "Authorization header is missing or is not a bearer token."), "", token
        kind = (headers.get(TOKEN_TYPE_HEADER) or "").upper()
        if kind == KEYPAIR_JWT or (not kind and token.count(".") == 2):
            return self._check_jwt(token), KEYPAIR_JWT, token
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or (kind and issued[1] != kind):
            return Refusal("390303", "Invalid OAuth access token."), kind, token
        return None, issued[1], token

    def _check_jwt(self, token: str) -> Refusal | None:
        import jwt

        invalid = Refusal("390144", "JWT token is invalid.")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return invalid
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        account_user, _, key_id = issuer.partition(".SHA256:")
        if not key_id or account_user.upper() != subject.upper() or "." not in subject:
            return invalid
        user = subject.split(".", 1)[1].upper()
        with self._lock:
            public_key = self._keys.get((user, f"SHA256:{key_id}"))
        if public_key is None:
            return invalid
        try:
            verified = jwt.decode(
                token, public_key, algorithms=["RS256"], options={"require": ["exp", "iat"]}
            )
        except jwt.PyJWTError:
            return invalid
        if float(verified["exp"]) <= time.time():  # pragma: no cover - PyJWT refuses it already
            return invalid
        return None
