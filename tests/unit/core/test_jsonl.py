"""The one JSONL reader behind the question sets and BEIR folders: line numbers, caller's error type."""
import pytest

from kb.core.jsonl import jsonl_records


class DataError(Exception):
    pass


def test_records_carry_their_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"x": 1}\n\n   \n[2, 3]\n"s"\n', encoding="utf-8")
    assert list(jsonl_records(path, DataError)) == [(1, {"x": 1}), (4, [2, 3]), (5, "s")]


def test_a_bad_line_and_a_missing_file_raise_the_callers_error(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"x": 1}\n{"x": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.jsonl:2: not valid JSON"):
        list(jsonl_records(path, DataError))
    with pytest.raises(DataError, match=r"nope\.jsonl is missing\."):
        list(jsonl_records(tmp_path / "nope.jsonl", DataError))
    with pytest.raises(DataError, match="^Ask the data team$"):
        list(jsonl_records(tmp_path / "nope.jsonl", DataError, missing="Ask the data team"))


def test_a_beir_record_without_an_id_names_its_line(tmp_path):
    from indexer.evaluate import EvalDataError, load_beir_queries

    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"queries\.jsonl:2: a record needs an '_id'"):
        load_beir_queries(tmp_path)
