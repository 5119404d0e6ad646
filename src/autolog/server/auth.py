"""Bearer tokens: created and revoked by name, stored as SHA-256 hashes, checked per request.

A token is 256 random bits (``alg_`` + 43 URL-safe characters), so a plain SHA-256 is the right
hash: there is nothing to brute-force that a slow hash would protect. The server never stores
or logs a token; a leaked database gives no usable credential. Lookup is by hash through a
unique index, and the stored hash is compared again with :func:`hmac.compare_digest`.

Scopes are ordered: ``read`` lists and downloads, ``write`` also records runs, ``admin`` also
manages tokens through the API. Every check reads the database, so a token revoked through one
server process is refused by all of them at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from .tables import tokens

if TYPE_CHECKING:
    from .db import Database

__all__ = ["SCOPES", "active_digests", "allows", "create_token", "hash_token", "list_tokens",
           "revoke_token", "verify"]

SCOPES = ("read", "write", "admin")
PREFIX = "alg_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def allows(granted: str, needed: str) -> bool:
    return SCOPES.index(granted) >= SCOPES.index(needed)


def create_token(db: Database, name: str, scope: str = "write") -> tuple[str, dict[str, Any]]:
    """A new token named ``name``; returns the token (shown once) and its record."""
    if not _NAME.match(name):
        raise ValueError(f"token name {name!r}: use 1-100 letters, digits and _.@- "
                         "(starting with a letter or digit)")
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: use one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = {"name": name, "token_hash": hash_token(token), "scope": scope,
           "created": int(time.time() * 1000), "revoked": None}
    with db.write() as conn:
        active = conn.execute(select(func.count()).select_from(tokens).where(
            tokens.c.name == name, tokens.c.revoked.is_(None))).scalar_one()
        if active:
            raise ValueError(f"an active token is already named {name!r}; revoke it first")
        conn.execute(insert(tokens).values(**row))
    return token, _public(row)


def revoke_token(db: Database, name: str) -> int:
    """Revoke every active token named ``name``; LookupError when there is none."""
    with db.write() as conn:
        revoked = conn.execute(update(tokens).where(tokens.c.name == name,
                                                    tokens.c.revoked.is_(None))
                               .values(revoked=int(time.time() * 1000))
                               .returning(tokens.c.id)).all()
    if not revoked:
        raise LookupError(f"no active token named {name!r}")
    return len(revoked)


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(tokens).order_by(tokens.c.id)).mappings().all()
    return [_public(row) for row in rows]


def count_active(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tokens)
                                .where(tokens.c.revoked.is_(None))).scalar_one())


def active_digests(db: Database) -> set[str]:
    """The SHA-256 digests of every active token."""
    with db.read() as conn:
        return set(conn.execute(select(tokens.c.token_hash)
                                .where(tokens.c.revoked.is_(None))).scalars())


def verify(db: Database, token: str) -> dict[str, Any] | None:
    """The active token's record, or None for an unknown or revoked token."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    with db.read() as conn:
        row = conn.execute(select(tokens).where(tokens.c.token_hash == digest)).mappings().first()
    if row is None or row["revoked"] is not None:
        return None
    if not hmac.compare_digest(row["token_hash"], digest):
        return None
    return _public(row)


def _public(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "scope": row["scope"], "created": row["created"],
            "revoked": row["revoked"]}
