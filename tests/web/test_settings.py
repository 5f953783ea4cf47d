"""Settings, input checks and the timeline layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sagakit.errors import ConfigurationError
from sagakit.store.records import SagaEvent
from sagakit.web.inputs import InputError, age_cutoff, decode_cursor
from sagakit.web.settings import WebSettings, is_local_host, load_settings
from sagakit.web.timeline import build_timeline


def test_tokens_are_named() -> None:
    settings = WebSettings(tokens=" alice = a1 , ci=c2,")  # type: ignore[arg-type]
    assert settings.token_names() == {"a1": "alice", "c2": "ci"}
    assert settings.actor_for("c2") == "ci"
    assert settings.actor_for("c3") is None
    assert settings.reads_open is False
    assert "a1" not in repr(settings)


def test_a_malformed_token_list_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGAKIT_API_TOKENS", "alice=ok,secret-without-name")
    with pytest.raises(ConfigurationError, match="entry 2") as info:
        load_settings()
    assert "secret-without-name" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_local_hosts(host: str, local: bool) -> None:
    assert is_local_host(host) is local


def test_inputs_name_their_field() -> None:
    with pytest.raises(InputError) as info:
        age_cutoff("99999999w", "query.older_than")
    assert info.value.field == "query.older_than"
    with pytest.raises(InputError):
        decode_cursor("W1siYSJdXQ")  # valid base64 and JSON, wrong shape


def test_timeline_places_bars_by_start_and_duration() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(seq: int, kind: str, ms: float, at_ms: float) -> SagaEvent:
        at = t0 + timedelta(milliseconds=at_ms)
        return SagaEvent("s", seq, kind, step="a", attempt=1, at=at, duration_ms=ms)

    events = [
        SagaEvent("s", 1, "saga_started", at=t0),
        event(2, "step_completed", 100, 100),
        event(3, "step_failed", 50, 400),
        event(4, "compensation_completed", 100, 1000),
    ]
    timeline = build_timeline(events)
    assert timeline.span_ms == 1000
    assert [(b.css, b.left, b.width) for b in timeline.bars] == [
        ("step-ok", 0.0, 10.0),
        ("step-failed", 35.0, 5.0),
        ("compensation-ok", 90.0, 10.0),
    ]
    assert [m.label for m in timeline.markers] == ["saga started"]
    assert build_timeline([]).bars == []
