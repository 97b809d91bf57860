"""The settings table: parsed and validated at start, every bad value named with what it accepts."""
import subprocess
import sys
from pathlib import Path

import pytest

from kb.core.settings import ChunkSettings, Settings, SettingsError, describe, env_vars, rows
from kb.insight.querylog import QueryLog
from search_app.settings import WebSettings

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_when_nothing_is_set():
    assert Settings.from_env({}) == Settings()
    assert WebSettings.from_env({}) == WebSettings()


def test_values_are_parsed_by_type_nested_groups_included():
    s = Settings.from_env({"KB_CHUNK_MAX_TOKENS": "96", "KB_BLEND_WEIGHT": "0.7", "KB_QUERY_LOG_ENABLED": "off",
                           "KB_FUSION": "rrf", "KB_INDEX_DIR": "/srv/kb/index"})
    assert s.chunking == ChunkSettings(max_tokens=96)
    assert (s.blend_weight, s.query_log_enabled, s.fusion, str(s.index_dir)) == (0.7, False, "rrf", "/srv/kb/index")


def test_an_empty_variable_means_the_default():
    assert Settings.from_env({"KB_CANDIDATE_DEPTH": " ", "KB_FUSION": ""}) == Settings()


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("KB_FUSION", "rfr", "must be one of 'blend', 'rrf'"),
    ("KB_DEFAULT_MODE", "semantic", "must be one of 'dense', 'keyword', 'hybrid'"),
    ("KB_APPROX_INDEX", "pq", "must be one of 'ivf', 'hnsw'"),
    ("KB_CANDIDATE_DEPTH", "many", "must be a whole number of at least 1"),
    ("KB_CANDIDATE_DEPTH", "0", "out of range of at least 1"),
    ("KB_BLEND_WEIGHT", "1.5", "out of range from 0 to 1"),
    ("KB_BLEND_WEIGHT", "nan", "must be a finite number from 0 to 1"),
    ("KB_QUERY_LOG_ENABLED", "maybe", "use 1 or 0"),
    ("KB_BUILD_KILL_AT", "later", "must be one of"),
    ("KB_QUERY_LOG_RETENTION_DAYS", "0", "out of range of at least 1"),
    ("KB_QUERY_LOG_RETENTION_DAYS", "-5", "out of range of at least 1"),
])
def test_a_bad_value_names_the_variable_and_what_it_accepts(variable, value, expected):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert f"{variable}={value!r}" in str(info.value) and expected in str(info.value)


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"KB_FUSION": "x", "KB_RRF_K": "-3", "KB_MODEL": "/some/folder"})
    assert "KB_FUSION" in str(info.value) and "KB_RRF_K" in str(info.value) and "KB_MODEL" not in str(info.value)


def test_web_rows_live_with_the_web_app_and_names_are_unique():
    library, web = env_vars(Settings), env_vars(WebSettings)
    assert not set(library) & set(web)
    assert len(set(library)) == len(library) and len(set(web)) == len(web)
    assert "KB_ADMIN_TOKEN" in web and "KB_ADMIN_TOKEN" not in library
    assert all(meta.help and meta.part for _, meta, _, _ in rows(Settings))


def test_help_texts_come_from_the_table():
    assert describe(Settings, "chunking.max_tokens") == "(default 128; KB_CHUNK_MAX_TOKENS)"
    assert describe(Settings, "index_dir") == "(default var/index; KB_INDEX_DIR)"


def test_the_command_line_stops_at_start_on_a_bad_setting():
    result = subprocess.run([sys.executable, "-m", "indexer", "status"], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "KB_FUSION": "rfr", "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 2
    assert "KB_FUSION='rfr': must be one of 'blend', 'rrf'" in result.stderr


@pytest.mark.parametrize("days", [0, -1, -365])
def test_a_query_log_never_keeps_questions_forever(tmp_path, days):
    """0 or less used to mean "never purge"; the log refuses it, whoever builds it."""
    with pytest.raises(ValueError, match="retention_days must be at least 1"):
        QueryLog(tmp_path / "querylog.sqlite", retention_days=days)
    assert QueryLog(tmp_path / "querylog.sqlite", retention_days=1).retention_days == 1


def test_a_blank_admin_token_means_off_and_surrounding_spaces_are_dropped():
    token = "k" * 32
    assert WebSettings.from_env({"KB_ADMIN_TOKEN": "   "}).admin_token == ""
    assert WebSettings.from_env({"KB_ADMIN_TOKEN": f"  {token}\n"}).admin_token == token
    assert WebSettings(admin_token=" \t ").admin_token == ""


@pytest.mark.parametrize("token", ["x", "short-but-not-empty", "k" * 31, "  " + "k" * 31 + "  "])
def test_an_admin_token_under_32_characters_stops_the_app_at_start(token):
    with pytest.raises(SettingsError) as info:
        WebSettings.from_env({"KB_ADMIN_TOKEN": token})
    message = str(info.value)
    assert "KB_ADMIN_TOKEN" in message and "at least 32" in message and token.strip() not in message
    with pytest.raises(SettingsError, match="KB_ADMIN_TOKEN"):
        WebSettings(admin_token=token)


def test_a_short_admin_token_stops_the_web_app_factory(tmp_path):
    """What `make run` and `make serve` meet: create_app reads the settings and refuses."""
    result = subprocess.run([sys.executable, "-c", "from search_app import create_app; create_app()"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "KB_ADMIN_TOKEN": "letmein", "HF_HUB_OFFLINE": "1",
                                 "KB_INDEX_DIR": str(tmp_path), "KB_QUERY_LOG_ENABLED": "0"})
    assert result.returncode != 0 and "KB_ADMIN_TOKEN is 7 characters long" in result.stderr
    assert "letmein" not in result.stderr
