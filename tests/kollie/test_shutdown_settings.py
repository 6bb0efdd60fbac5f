"""The graceful stop's settings: checked at start, and within the chart's grace period."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kollie.config import ConfigError, Settings

CHART_VALUES = Path(__file__).resolve().parents[2] / "chart" / "values.yaml"


def test_shutdown_settings_are_read_and_checked() -> None:
    settings = Settings.from_env({"KOLLIE_SHUTDOWN_DELAY": "2s", "KOLLIE_SHUTDOWN_TIMEOUT": "12"})
    assert (settings.shutdown_delay, settings.shutdown_timeout) == (2.0, 12.0)
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"KOLLIE_SHUTDOWN_DELAY": "soon", "KOLLIE_SHUTDOWN_TIMEOUT": "-1"})
    assert [p.split("=")[0] for p in e.value.problems] == [
        "KOLLIE_SHUTDOWN_DELAY",
        "KOLLIE_SHUTDOWN_TIMEOUT",
    ]
    with pytest.raises(ConfigError, match="must be shorter than KOLLIE_SHUTDOWN_TIMEOUT"):
        Settings.from_env({"KOLLIE_SHUTDOWN_DELAY": "30", "KOLLIE_SHUTDOWN_TIMEOUT": "20"})


def test_the_default_stop_fits_in_the_charts_grace_period() -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())
    grace = values["terminationGracePeriodSeconds"]
    assert Settings().shutdown_timeout < grace, "the kubelet would SIGKILL a stopping replica"
    assert values["config"]["shutdownTimeout"] == Settings().shutdown_timeout
    assert values["config"]["shutdownDelay"] == Settings().shutdown_delay
