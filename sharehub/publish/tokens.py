"""Keyed tokens for resident ID numbers: ``<key_version>:<hex HMAC-SHA256>``.

Why a keyed HMAC and not a plain hash: an 18-character resident ID is guessable (region
code, birth date, a sequence number and a check digit), so anyone could hash every
candidate and reverse a plain SHA-256 in hours. Without the key, an HMAC cannot be
recomputed. The same number under the same key always gives the same token, so
subscribers can still join and count by it.

Why the key version in the token: when the key is rotated every token changes; the prefix
tells a subscriber which key produced a value, so tokens of two versions are never
compared by mistake (docs/publishing.md, "Key rotation").
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from sharehub.errors import ConfigError
from sharehub.settings import Settings

# Below this many characters a key can be guessed; 32 random bytes as hex is 64.
MIN_KEY_LENGTH = 16
_KEY_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")


def require_key(settings: Settings, *, reason: str = "a contract publishes tokens") -> tuple[bytes, str]:
    """The HMAC key and its version from the settings, or a :class:`ConfigError` saying what to set."""
    key, version = settings.hmac_key, settings.hmac_key_version
    if not key:
        raise ConfigError(
            f"{reason} (resident ID numbers leave the hub as HMAC tokens) but no key is set: "
            "set SHAREHUB_HMAC_KEY to a secret of at least 32 random characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`, and keep it out of the repository"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"SHAREHUB_HMAC_KEY has {len(key)} characters; at least {MIN_KEY_LENGTH} are needed "
            "so that tokens cannot be reversed by guessing the key"
        )
    if not _KEY_VERSION.match(version):
        raise ConfigError(
            f"SHAREHUB_HMAC_KEY_VERSION={version!r} must be 1-16 letters, digits, '.', '_' or '-' "
            "(it prefixes every token, before a ':')"
        )
    return key.encode("utf-8"), version


def token(value: str, key: bytes, key_version: str) -> str:
    """The token of one ID number: ``<key_version>:<64 hex digits>``."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_version}:{digest}"


def tokens(values: Iterable[str | None], key: bytes, key_version: str) -> list[str | None]:
    """Tokens of many values; NULL stays NULL (an unknown number is not a value to hide)."""
    return [None if v is None else token(v, key, key_version) for v in values]
