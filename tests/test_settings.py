"""Settings refuse what the server could not honour, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.cli.main import main
from openkms.settings import DEFAULT_AUDIT_POLL_MICROSECONDS, Settings


def _settings(**overrides: object) -> Settings:
    return Settings(data_dir=Path("unused"), database_url="sqlite:///unused.db", **overrides)  # type: ignore[arg-type]


def test_audit_polling_is_on_by_default_and_can_be_turned_off() -> None:
    assert _settings().audit_poll_microseconds == DEFAULT_AUDIT_POLL_MICROSECONDS > 0
    assert _settings(audit_poll_microseconds=0).audit_poll_microseconds == 0


@pytest.mark.parametrize("value", [-1, 100_001])
def test_an_audit_poll_limit_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="audit poll limit"):
        _settings(audit_poll_microseconds=value)


def test_serve_refuses_a_bad_poll_limit_before_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    status = main(["serve", "--dev", "--data-dir", str(data_dir), "--port", "1", "--audit-poll-us", "-5"])
    assert status == 2
    assert "audit poll limit" in capsys.readouterr().err
    assert not data_dir.exists()


def test_a_malformed_environment_default_is_a_usage_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENKMS_AUDIT_POLL_US", "fast")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--dev", "--data-dir", str(tmp_path / "data"), "--port", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--audit-poll-us: invalid int value: 'fast'" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()
