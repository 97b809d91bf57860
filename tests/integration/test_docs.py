"""The README stays true because these tests read it."""
import ast
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from indexer.cli import build_parser
from kb.core.settings import ENV_VARS, Settings, env_vars, markdown_table
from search_app.settings import WebSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands():
    parser = build_parser(Settings())
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_cli_subcommand_is_in_the_readme(command):
    assert f"python -m indexer {command}" in README, f"README does not show `python -m indexer {command}`"


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser(Settings()).parse_args([command, "--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_every_route_is_in_the_readme(app):
    routes = sorted({re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule) for rule in app.url_map.iter_rules()
                     if rule.endpoint != "static"})
    assert routes
    missing = [r for r in routes if f"`{r}" not in README and f"`GET {r}" not in README]
    assert not missing, f"routes missing from README: {missing}"


def test_every_environment_variable_is_documented():
    used = set()
    for folder in ("kb", "indexer", "search_app"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"\b(KB_[A-Z0-9_]+)\b", path.read_text(encoding="utf-8")))
    used |= set(ENV_VARS) | set(env_vars(WebSettings))
    missing = sorted(v for v in used if f"`{v}`" not in README)
    assert not missing, f"environment variables missing from the README table: {missing}"


def test_the_readme_configuration_table_is_the_settings_table():
    """The README table is derived from the settings rows; regenerate it from the message if this fails."""
    table = markdown_table(Settings, WebSettings)
    assert table in README, "README configuration table is out of date; replace it with:\n\n" + table


def _settings_variable_literals() -> dict[str, list[str]]:
    """Every string literal that is exactly a KB_* name, with where it stands."""
    found: dict[str, list[str]] = {}
    for folder in ("kb", "indexer", "search_app"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"KB_[A-Z0-9_]+", node.value):
                    found.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_each_variable_is_named_once_in_the_code_that_reads_settings():
    found = _settings_variable_literals()
    assert set(found) == set(ENV_VARS) | set(env_vars(WebSettings))
    repeated = {name: places for name, places in found.items() if len(places) != 1}
    assert not repeated, f"a settings variable is named in more than one place: {repeated}"
    outside = {name: places for name, places in found.items()
               if not places[0].startswith(("kb/core/settings.py", "search_app/settings.py"))}
    assert not outside, f"settings variables read outside the settings tables: {outside}"


def test_make_commands_are_in_the_readme():
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def _readme_api_example():
    curl = re.search(r"curl '(http://127\.0\.0\.1:5000/api/search\?[^']+)'", README)
    block = re.search(r"```json\n(.*?)\n```", README[curl.end():], re.S)
    return curl.group(1), json.loads(block.group(1))


def test_readme_api_example_runs_against_a_real_index(client):
    url, documented = _readme_api_example()
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    actual = response.get_json()
    assert set(actual) == set(documented)
    assert actual["query"] == documented["query"] and actual["mode"] == documented["mode"]
    assert len(actual["results"]) == len(documented["results"])
    for got, doc in zip(actual["results"], documented["results"]):
        assert set(got) == set(doc) and set(got["citation"]) == set(doc["citation"])
        for key in ("rank", "text", "doc_id", "chunk_id"):
            assert got[key] == doc[key], key
        for key in ("title", "url", "section", "source_type", "organisation", "as_of", "start", "end"):
            assert got["citation"][key] == doc["citation"][key], key
