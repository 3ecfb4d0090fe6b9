"""The delivery session reads the proxy environment once per URL (issue 14 part 1)."""

from __future__ import annotations

import pytest

from gateway.soap.client import pooled_session

URL = "http://127.0.0.1:9/soap/ecase"


def test_environment_proxies_still_apply_and_are_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = pooled_session()
    first = session.merge_environment_settings(URL, {}, None, None, None)
    assert first["proxies"]["http"] == "http://proxy.example:3128"
    # A caller changing what it got back does not change what the next request gets.
    first["proxies"]["http"] = "http://elsewhere:1"
    monkeypatch.setenv("HTTP_PROXY", "http://changed.example:3128")
    again = session.merge_environment_settings(URL, {}, None, None, None)
    assert again["proxies"]["http"] == "http://proxy.example:3128"  # remembered, not re-read
    # Per-call proxies are never remembered nor overridden.
    own = session.merge_environment_settings(URL, {"http": "http://mine:8"}, None, None, None)
    assert own["proxies"]["http"] == "http://mine:8"


def test_no_proxy_bypass_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = pooled_session()
    got = session.merge_environment_settings(URL, {}, None, None, None)
    assert "http" not in got["proxies"] or not got["proxies"]["http"]
