"""One settings object for a Runtime: arguments, else SAGAKIT_* variables, else defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest

import sagakit as sk
from sagakit.settings import DEFAULT_WORKERS, RuntimeSettings


def test_defaults_environment_and_arguments_in_that_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sk.Runtime("memory://").settings == RuntimeSettings()
    assert sk.Runtime("memory://").workers == DEFAULT_WORKERS
    # Given variables in the environment
    monkeypatch.setenv("SAGAKIT_WORKERS", "0")
    monkeypatch.setenv("SAGAKIT_LEASE_SECONDS", "7.5")
    monkeypatch.setenv("SAGAKIT_ARCHIVE_AFTER", "P30D")
    monkeypatch.setenv("SAGAKIT_BROKER_URL", "memory://")
    rt = sk.Runtime("memory://")
    # I expect them used where no argument is given
    assert (rt.workers, rt.leases.lease_seconds) == (0, 7.5)
    assert rt.archive_after == timedelta(days=30)
    assert isinstance(rt.broker, sk.MemoryBroker)
    # and an argument to win
    assert sk.Runtime("memory://", workers=3).workers == 3


def test_replace_keeps_every_setting_but_the_ones_changed() -> None:
    rt = sk.Runtime("memory://", workers=2, lease_seconds=5, archive_after=timedelta(hours=1))
    other = rt.replace(workers=8)
    assert other.settings == rt.settings.model_copy(update={"workers": 8})
    assert other.settings.lease_seconds == 5


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"workers": -1}, "workers: Input should be greater than or equal to 0"),
        ({"workers": True}, "workers must be an int >= 0"),
        ({"lease_seconds": 0}, "lease_seconds: Input should be greater than 0"),
        ({"prefix": "no spaces"}, "prefix: String should match pattern"),
    ],
)
def test_a_bad_setting_is_refused_by_name(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(sk.ConfigurationError, match=says):
        sk.Runtime("memory://", **kwargs)  # type: ignore[arg-type]


def test_a_bad_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGAKIT_POLL_INTERVAL", "soon")
    with pytest.raises(
        sk.ConfigurationError, match="poll_interval: Input should be a valid number"
    ):
        sk.Runtime("memory://")
