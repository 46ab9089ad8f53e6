"""The one table of settings (``sync.conf.SETTINGS``): refused typos, parsed
variables, and docs that say what the table says.

Pure and in-process: the settings module is imported as Django imports it,
and the README and docs/ are read from the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from sync.conf import (
    BY_ENV,
    KASAGI_DEFAULTS,
    SETTINGS,
    KasagiSettings,
    Setting,
    environment_value,
    from_environment,
    kasagi_settings,
    markdown_table,
    shown_default,
    with_table,
)
from sync.core.limits import Limits

ROOT = Path(__file__).resolve().parent.parent


# -- settings.KASAGI --------------------------------------------------------------


def test_an_unknown_key_raises_naming_it(settings: Any) -> None:
    settings.KASAGI = {**settings.KASAGI, "grace_periode": 5}
    with pytest.raises(ImproperlyConfigured, match="'grace_periode'"):
        kasagi_settings()


def test_a_value_of_the_wrong_type_raises_naming_the_key(settings: Any) -> None:
    settings.KASAGI = {"tick_ms": "50"}
    with pytest.raises(ImproperlyConfigured, match=r"KASAGI\['tick_ms'\] must be int"):
        kasagi_settings()
    settings.KASAGI = {"persistence": 1}
    with pytest.raises(ImproperlyConfigured, match="'persistence'"):
        kasagi_settings()


def test_missing_keys_take_the_table_default_and_a_change_applies_at_once(settings: Any) -> None:
    settings.KASAGI = {}
    assert asdict(kasagi_settings()) == KASAGI_DEFAULTS
    settings.KASAGI = {"grace_period": 2, "redis_url": None}
    conf = kasagi_settings()
    assert conf.grace_period == 2
    assert conf.tick_ms == KASAGI_DEFAULTS["tick_ms"]


def test_the_table_holds_the_v1_1_settings() -> None:
    assert {k: KASAGI_DEFAULTS[k] for k in ("history", "history_kept", "recovery_log")} == {
        "history": True, "history_kept": 10000, "recovery_log": 1000,
    }
    assert (BY_ENV["KASAGI_HISTORY"].name, BY_ENV["KASAGI_HISTORY_KEPT"].name,
            BY_ENV["KASAGI_RECOVERY_LOG"].name) == ("history", "history_kept", "recovery_log")
    assert "room_idle_unload" in KASAGI_DEFAULTS


def test_the_pure_core_limits_default_to_the_table() -> None:
    """``sync.core.limits`` keeps defaults (it may not import Django): they are the table's."""
    assert Limits() == KasagiSettings(**KASAGI_DEFAULTS).limits()
    for field in fields(Limits):
        assert field.default == KASAGI_DEFAULTS[field.name], field.name


# -- the environment ---------------------------------------------------------------


def test_nothing_set_gives_every_default() -> None:
    assert from_environment({}) == KASAGI_DEFAULTS
    assert environment_value({}, "DJANGO_ALLOWED_HOSTS") == ["localhost", "127.0.0.1", "[::1]"]
    assert environment_value({"KASAGI_TICK_MS": ""}, "KASAGI_TICK_MS") == 50


@pytest.mark.parametrize(
    ("env", "raw", "value"),
    [
        ("KASAGI_TICK_MS", " 20 ", 20),
        ("KASAGI_GRACE_PERIOD", "1.5", 1.5),
        ("KASAGI_GRACE_PERIOD", "2", 2.0),
        ("KASAGI_PERSISTENCE", "false", False),
        ("KASAGI_PERSISTENCE", "0", False),
        ("KASAGI_PERSISTENCE", "Off", False),
        ("KASAGI_HISTORY", "yes", True),
        ("KASAGI_ALLOW_ANONYMOUS", "1", True),
        ("REDIS_URL", "redis://h:6379/3", "redis://h:6379/3"),
        ("KASAGI_METRICS_NETWORKS", "10.0.0.0/8, ,10.1.0.0/16", ["10.0.0.0/8", "10.1.0.0/16"]),
    ],
)
def test_variables_are_parsed_by_their_type(env: str, raw: str, value: Any) -> None:
    parsed = environment_value({env: raw}, env)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("env", "raw"),
    [("KASAGI_TICK_MS", "fast"), ("KASAGI_TICK_MS", "2.5"), ("KASAGI_PERSISTENCE", "maybe"),
     ("KASAGI_RATE_LIMIT", "sixty")],
)
def test_a_variable_that_does_not_parse_raises_naming_it(env: str, raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"{env}="):
        environment_value({env: raw}, env)


def test_the_settings_module_builds_kasagi_from_the_environment() -> None:
    """A fresh interpreter imports kasagi_project.settings as the server does."""
    script = (
        "import json, kasagi_project.settings as s;"
        "print(json.dumps([s.KASAGI, s.SERVE_STATIC, s.METRICS_ALLOWED_NETWORKS]))"
    )
    env = {"PATH": "/usr/bin:/bin", "KASAGI_TICK_MS": "20", "KASAGI_PERSISTENCE": "off",
           "REDIS_URL": "redis://127.0.0.1:6379/9", "DJANGO_DEBUG": "false",
           "KASAGI_METRICS_NETWORKS": "10.0.0.0/8"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    kasagi, serve_static, networks = json.loads(out)
    assert kasagi == {**KASAGI_DEFAULTS, "tick_ms": 20, "persistence": False,
                      "redis_url": "redis://127.0.0.1:6379/9"}
    assert serve_static is False  # follows DJANGO_DEBUG when not set itself
    assert networks == ["10.0.0.0/8"]
    broken = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                            env={**env, "KASAGI_TICK_MS": "fast"}, capture_output=True, text=True)
    assert broken.returncode != 0 and "KASAGI_TICK_MS='fast'" in broken.stderr


# -- the docs ----------------------------------------------------------------------


def test_the_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme
    assert with_table(readme) == readme, "run `python -m sync.conf README.md`"
    for setting in SETTINGS:
        assert f"| `{setting.env}` |" in readme, setting.env


def _rows_naming_variables(text: str) -> list[tuple[list[str], list[str]]]:
    """(variables, defaults) of each table row whose first cell names variables only."""
    found = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.lstrip().startswith("|"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        if names and re.fullmatch(r"(`[A-Z][A-Z0-9_]+`(,\s*)?)+", cells[0]):
            defaults = [d.strip() for d in cells[1].split(", ")] if len(names) > 1 else [cells[1]]
            found.append((names, defaults))
    return found


def _same(doc: str, setting: Setting) -> bool:
    ours = shown_default(setting).replace("`", "")
    doc = doc.replace("`", "")
    if doc == ours:
        return True
    try:
        return float(doc) == float(ours)
    except ValueError:
        return False


@pytest.mark.parametrize("path", ["README.md", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_every_settings_table_in_the_docs_agrees_with_the_table(path: str) -> None:
    for names, defaults in _rows_naming_variables((ROOT / path).read_text()):
        known = [name for name in names if name in BY_ENV]
        if not known:
            continue
        assert known == names, f"{path}: {names} are not all in sync.conf.SETTINGS"
        if len(defaults) != len(names):  # "dev values" for a group of variables
            assert len(defaults) == 1 and len(names) > 1, (path, names, defaults)
            continue
        for name, default in zip(names, defaults, strict=True):
            assert _same(default, BY_ENV[name]), f"{path}: {name} default {default!r}"

