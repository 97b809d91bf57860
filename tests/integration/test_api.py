"""The JSON API contract on the real model and the real corpus."""
import pytest

CPR_QUESTION = "When was the Danish personal identification number introduced?"


def test_search_contract(client):
    r = client.get("/api/search", query_string={"q": CPR_QUESTION, "k": 3})
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert set(body) >= {"query", "took_ms", "index_version", "results"}
    assert body["query"] == CPR_QUESTION and isinstance(body["took_ms"], (int, float))
    assert len(body["results"]) == 3
    for i, res in enumerate(body["results"], start=1):
        assert res["rank"] == i
        assert set(res) >= {"rank", "score", "text", "chunk_id", "doc_id", "citation"}
        assert set(res["citation"]) >= {"title", "url", "section", "source_type"}
        assert res["citation"]["url"].startswith("http")
    scores = [res["score"] for res in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_cpr_question_ranks_a_1968_passage_first_and_cites_the_promo_page(client):
    body = client.get("/api/search", query_string={"q": CPR_QUESTION}).get_json()
    assert "1968" in body["results"][0]["text"]
    promo = [r for r in body["results"] if r["doc_id"] == "digital-healthcare-denmark"]
    assert promo and "1968" in promo[0]["text"]
    assert promo[0]["citation"]["source_type"] == "promo"


def test_result_text_is_the_cited_span(client, corpus_index):
    body = client.get("/api/search", query_string={"q": "telehealth for COPD patients", "k": 10}).get_json()
    for res in body["results"]:
        doc = corpus_index.document(res["doc_id"])
        c = res["citation"]
        assert doc.text[c["start"]:c["end"]] == res["text"]


def test_index_version_matches_the_manifest(client, corpus_index):
    body = client.get("/api/search?q=MedCom").get_json()
    assert body["index_version"] == corpus_index.manifest["build_id"]


@pytest.mark.parametrize(
    "query, code",
    [
        ({}, "missing_q"),
        ({"q": ""}, "missing_q"),
        ({"q": "   "}, "missing_q"),
        ({"q": "x" * 1001}, "q_too_long"),
        ({"q": "ok", "k": "0"}, "invalid_k"),
        ({"q": "ok", "k": "51"}, "invalid_k"),
        ({"q": "ok", "k": "-3"}, "invalid_k"),
        ({"q": "ok", "k": "ten"}, "invalid_k"),
        ({"q": "ok", "k": "2.5"}, "invalid_k"),
        ({"q": "ok", "mode": "fuzzy"}, "invalid_mode"),
        ({"q": "ok", "source_type": "blog"}, "invalid_source_type"),
        ({"q": "ok", "organisation": "Nobody"}, "invalid_organisation"),
    ],
)
def test_bad_input_is_400_with_error_shape(client, query, code):
    r = client.get("/api/search", query_string=query)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == code and isinstance(err["message"], str) and err["message"]


def test_k_bounds_are_inclusive(client):
    assert len(client.get("/api/search?q=registry&k=1").get_json()["results"]) == 1
    assert client.get("/api/search?q=registry&k=50").status_code == 200
    assert len(client.get("/api/search?q=registry").get_json()["results"]) == 10


def test_query_of_exactly_1000_characters_is_accepted(client):
    assert client.get("/api/search", query_string={"q": "registry " * 111 + "a"}).status_code == 200


def test_unknown_routes_and_documents_are_json_404(client):
    for path in ("/api/nothing-here", "/api/documents/no-such-doc"):
        r = client.get(path)
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    r = client.post("/api/search?q=x")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"


def test_document_endpoint(client):
    body = client.get("/api/documents/national-patient-registry").get_json()
    assert body["source_type"] == "registry" and body["chunks"]
    for c in body["chunks"]:
        assert body["text"][c["start"]:c["end"]]


def test_healthz(client, corpus_index):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["chunks"] == corpus_index.chunk_count
    assert body["model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_missing_index_is_503_not_a_crash(tmp_path, settings, embedder):
    from kb.search.live import LiveIndex
    from search_app import create_app

    app = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": LiveIndex(tmp_path, settings, embedder)})
    r = app.test_client().get("/api/search?q=x")
    assert r.status_code == 503 and "python -m indexer build" in r.get_json()["error"]["message"]
    assert app.test_client().get("/healthz").status_code == 503


def test_index_errors_tell_what_to_do_but_not_where_the_files_are(tmp_path, settings, embedder, caplog):
    """The 503 bodies and /healthz say how to fix it; the absolute path goes to the server log only."""
    from kb.search.live import LiveIndex
    from search_app import create_app

    missing = tmp_path / "secret-location" / "index"
    app = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": LiveIndex(missing, settings, embedder)})
    client = app.test_client()
    with caplog.at_level("WARNING"):
        api, page, health = client.get("/api/search?q=x"), client.get("/?q=x"), client.get("/healthz")
    assert api.status_code == page.status_code == health.status_code == 503
    said = "index not found: build it with `python -m indexer build`"
    assert api.get_json()["error"]["message"] == said and health.get_json()["error"] == said
    for r in (api, page, health):
        assert "secret-location" not in r.get_data(as_text=True) and str(tmp_path) not in r.get_data(as_text=True)
    assert str(missing) in caplog.text  # the operator still learns where
