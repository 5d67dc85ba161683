"""HMAC-SHA256 tokens for resident ID numbers: format, determinism, keys and their versions."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sharehub.errors import ConfigError
from sharehub.publish.tokens import require_key, token, tokens
from sharehub.settings import Settings

ID = "110105194803120016"
KEY = "test-key-0123456789abcdef0123456789"  # a test value, not a secret


def test_token_is_versioned_hmac_sha256_of_the_number() -> None:
    expected = hmac.new(KEY.encode(), ID.encode(), hashlib.sha256).hexdigest()
    assert token(ID, KEY.encode(), "v1") == f"v1:{expected}"
    assert len(expected) == 64 and ID not in token(ID, KEY.encode(), "v1")


def test_same_number_same_token_other_key_other_token() -> None:
    assert token(ID, KEY.encode(), "v1") == token(ID, KEY.encode(), "v1")
    assert token(ID, KEY.encode(), "v1").split(":")[1] != token(ID, b"another-key-0123456789", "v2").split(":")[1]
    assert token(ID, KEY.encode(), "v1") != token("110105194803120024", KEY.encode(), "v1")


def test_null_stays_null() -> None:
    assert tokens([ID, None], KEY.encode(), "v1") == [token(ID, KEY.encode(), "v1"), None]


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREHUB_HMAC_KEY", KEY)
    monkeypatch.setenv("SHAREHUB_HMAC_KEY_VERSION", "2026a")
    assert require_key(Settings.from_env()) == (KEY.encode(), "2026a")
    assert "test-key" not in repr(Settings.from_env())  # never printed with the settings


@pytest.mark.parametrize(("settings", "message"), [
    (Settings(), "no key is set"),
    (Settings(hmac_key="short"), "at least 16"),
    (Settings(hmac_key=KEY, hmac_key_version="v1:x"), "SHAREHUB_HMAC_KEY_VERSION"),
])
def test_missing_or_weak_key_is_a_config_error(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        require_key(settings)
