"""Settings: file plus RUNBOOK_* variables, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SettingsError
from engine.settings import Settings


def test_env_wins_over_file(tmp_path: Path) -> None:
    config = tmp_path / "runbook.yaml"
    config.write_text("workers: 2\nslack_channel: '#ops'\napprovers: [U1]\n")
    settings = Settings.load(config, {"RUNBOOK_WORKERS": "8", "RUNBOOK_SLACK_BOT_TOKEN": "xoxb-1"})
    assert settings.workers == 8 and settings.slack_channel == "#ops" and settings.approvers == ("U1",)
    assert settings.slack_bot_token is not None and "xoxb" not in repr(settings)


@pytest.mark.parametrize(("env", "key"), [({"RUNBOOK_WORKERS": "many"}, "workers"),
                                          ({"RUNBOOK_QUEUE_SIZE": "0"}, "queue_size")])
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        Settings.load(None, env)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "runbook.yaml"
    config.write_text("wokers: 2\n")
    with pytest.raises(SettingsError, match="wokers"):
        Settings.load(config, {})
