"""Player tokens and wallet addresses. Pure: no I/O, the clock is passed in.

Tokens are JWTs (RFC 7519) signed with HMAC-SHA256 (JWS "HS256") under a key from the SD_INGEST_TOKEN_KEY
setting; any JWT library can read them. Claims: sub (player id), role ("player" | "operator"), jti (token id, for
revocation), iat, exp. Revocation is checked by the caller against its revocation list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

PLAYER = "player"
OPERATOR = "operator"
ROLES = (PLAYER, OPERATOR)
MAX_TOKEN_BYTES = 4096
CLOCK_SKEW_S = 30  # tokens issued a little in the future (clock skew between replicas) are accepted

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


class AuthError(Exception):
    """The caller is not authenticated; `reason` is machine-readable (missing, malformed, signature, expired, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    player_id: str
    role: str
    token_id: str
    issued_at: int
    expires_at: int

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies HS256 JWTs under one key."""

    _HEADER = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the token key must be at least 32 bytes (SD_INGEST_TOKEN_KEY)")
        self._key = key

    def _sign(self, signing_input: str) -> str:
        return _b64url(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, player_id: str, role: str, ttl_s: int, now: float) -> tuple[str, Claims]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if ttl_s <= 0:
            raise ValueError(f"token lifetime must be positive, got {ttl_s}")
        claims = Claims(player_id=player_id, role=role, token_id=secrets.token_hex(12), issued_at=int(now), expires_at=int(now) + ttl_s)
        payload = {"sub": claims.player_id, "role": claims.role, "jti": claims.token_id, "iat": claims.issued_at, "exp": claims.expires_at}
        body = _b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{self._HEADER}.{body}"
        return f"{signing_input}.{self._sign(signing_input)}", claims

    def verify(self, token: str, now: float) -> Claims:
        """The token's claims.

        Raises:
            AuthError: malformed, bad signature, wrong algorithm, expired or not yet valid.
        """
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise AuthError("malformed", "the bearer token is empty or too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthError("malformed", "the bearer token is not a JWT (header.payload.signature)")
        header_b64, body_b64, signature = parts
        if not hmac.compare_digest(self._sign(f"{header_b64}.{body_b64}"), signature):
            raise AuthError("signature", "the bearer token's signature does not verify")
        try:
            header = json.loads(_unb64url(header_b64))
            payload = json.loads(_unb64url(body_b64))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed", "the bearer token does not decode") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise AuthError("malformed", "the bearer token must be signed with HS256")
        try:
            claims = Claims(
                player_id=str(payload["sub"]),
                role=str(payload["role"]),
                token_id=str(payload["jti"]),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            raise AuthError("malformed", "the bearer token lacks sub, role, jti, iat or exp") from None
        if claims.role not in ROLES:
            raise AuthError("malformed", f"the bearer token has an unknown role {claims.role!r}")
        if now >= claims.expires_at:
            raise AuthError("expired", "the bearer token has expired; ask for a new one")
        if claims.issued_at > now + CLOCK_SKEW_S:
            raise AuthError("not_yet_valid", "the bearer token is issued in the future")
        return claims


def bearer_token(metadata: dict[str, str]) -> str:
    """The token from an `authorization: Bearer <token>` header (gRPC metadata or HTTP header)."""
    value = metadata.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if not value:
        raise AuthError("missing", "no credentials: send `authorization: Bearer <token>`")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("malformed", "the authorization header must be `Bearer <token>`")
    return token.strip()


def b58decode(text: str) -> bytes:
    """Bitcoin-alphabet base58 (what Solana uses). Raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body


def validate_wallet(address: str) -> str:
    """A Solana wallet address: base58 of a 32-byte ed25519 public key (32-44 characters).

    Raises:
        ValueError: with the reason, for anything else.
    """
    if not 32 <= len(address) <= 44:
        raise ValueError(f"a Solana address is 32-44 base58 characters, got {len(address)}")
    try:
        raw = b58decode(address)
    except ValueError as err:
        raise ValueError(f"not a Solana address: {err}") from None
    if len(raw) != 32:
        raise ValueError(f"a Solana address decodes to 32 bytes, this one to {len(raw)}")
    return address
