"""Talking points on the real model and corpus: verbatim, cited, distinct, spread over sources."""
from __future__ import annotations

import itertools

import pytest
from bs4 import BeautifulSoup
from markdown_it import MarkdownIt

from kb.core.records import Citation
from kb.ingest.quotable import is_self_contained, refers_to_title, unit_start
from kb.ingest.sentences import sentence_spans
from kb.insight.talking_points import DUPLICATE_COSINE, TalkingPoint, brief, talking_points, to_markdown
from tests.fixtures.fake_embedder import CountingEmbedder

TOPIC = "registry data for research"
OFF_TOPIC = "How do I get a residence permit for my spouse?"


@pytest.fixture(scope="module")
def research_points(corpus_index):
    return talking_points(corpus_index, TOPIC, 5)


def test_registry_data_for_research_gives_five_points_from_three_or_more_documents(research_points):
    assert len(research_points) == 5
    assert len({p.citation.doc_id for p in research_points}) >= 3


def test_every_point_is_exactly_its_cited_span(research_points, corpus_index):
    for p in research_points:
        doc = corpus_index.document(p.citation.doc_id)
        assert p.text == doc.text[p.citation.start:p.citation.end]
        assert p.citation.title == doc.title and p.citation.url == doc.url
        # starts and ends on sentence boundaries of the document
        spans = sentence_spans(doc.text)
        assert p.citation.start in {s for s, _ in spans} and p.citation.end in {e for _, e in spans}


def test_no_two_points_are_near_duplicates(research_points, embedder):
    vectors = embedder.encode([p.text for p in research_points])
    for i, j in itertools.combinations(range(len(research_points)), 2):
        assert float(vectors[i] @ vectors[j]) < DUPLICATE_COSINE, (research_points[i].text, research_points[j].text)


def test_points_are_relevant_and_self_contained(research_points, embedder):
    q = embedder.encode_query(TOPIC)
    vectors = embedder.encode([p.text for p in research_points])
    for p, v in zip(research_points, vectors):
        assert abs(float(v @ q) - p.score) < 1e-4  # the score is the point's cosine with the topic
        assert is_self_contained(p.text)
    # the best point is at least as close to the topic as a typical corpus passage is to it
    assert max(p.score for p in research_points) > 0.45


def test_points_use_stored_vectors_and_run_no_model(corpus_index_dir, encoders, settings):
    """The points' vectors were stored at build time; only the topic's own vectors are encoded."""
    import kb

    counting = {name: CountingEmbedder(enc) for name, enc in encoders.items()}
    index = kb.Index.open(corpus_index_dir, counting, settings)
    points = talking_points(index, "telehealth for COPD patients (not cached before)", 5)
    assert len(points) == 5
    assert all(c.encoded == 0 for c in counting.values())  # query vectors go through encode_query


def test_a_danish_topic_gets_points_scored_with_the_multilingual_model(corpus_index, encoders):
    topic = "telemedicin til KOL-patienter i hjemmet"
    b = brief(corpus_index, topic)
    assert b.answered and len(b.points) >= 3
    model = encoders["multilingual"]
    q = model.encode_query(topic)
    vectors = model.encode([p.text for p in b.points])
    for p, v in zip(b.points, vectors):
        assert abs(float(v @ q) - p.score) < 1e-3  # the score is the multilingual cosine
    assert any("COPD" in p.text for p in b.points)


def test_n_controls_the_count_and_is_bounded(corpus_index):
    assert len(talking_points(corpus_index, "telehealth for COPD patients", 1)) == 1
    many = talking_points(corpus_index, "Danish national health registers", 12)
    assert 5 < len(many) <= 12
    for bad in (0, 21):
        with pytest.raises(ValueError):
            talking_points(corpus_index, TOPIC, bad)


def test_filters_restrict_the_sources(corpus_index):
    from kb.search.index import Filters

    points = talking_points(corpus_index, TOPIC, 5, filters=Filters(source_types=("registry",)))
    assert points and {corpus_index.documents[p.citation.doc_id].source_type for p in points} == {"registry"}


def test_off_topic_brief_has_no_points_but_related_topics(corpus_index):
    b = brief(corpus_index, OFF_TOPIC)
    assert not b.answered and b.points == [] and b.answer.score < b.answer.cut
    assert len(b.related) >= 2 and all(r.title in {d.title for d in corpus_index.documents.values()} for r in b.related)
    on = brief(corpus_index, TOPIC)
    assert on.answered and on.answer.score >= on.answer.cut and not on.related


# ---- self-containment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("It was founded in 1942.", False),
        ("This makes the data linkable.", False),
        ("They apply through the entry point.", False),
        ("However, foreign institutions cannot apply.", False),
        ("These registers cover everyone.", False),
        ("In addition, the agency runs Digital Post.", False),
        ('"It" is a pronoun, said nobody.', False),
        ("The Danish Cancer Registry was founded in 1942.", True),
        ("Researchers apply through the Research Services.", True),
        ("Itself a registry, LPR holds admissions.", True),
        ("There are 82 clinical quality databases.", True),
    ],
)
def test_dependent_openers(sentence, expected):
    assert is_self_contained(sentence) is expected


def test_definite_back_references_to_the_title():
    assert refers_to_title("The registry has been described as the first.", "Danish Cancer Registry (Cancerregisteret)")
    assert refers_to_title("The agency's privacy page says so.", "Agency for Digital Government")
    assert refers_to_title("Since 1997 the registry has supplied data.", "National Patient Registry")
    assert not refers_to_title("Researchers who want to apply use the registry.", "National Patient Registry")
    assert not refers_to_title("The Danish Cancer Registry was founded in 1942.", "Danish Cancer Registry")
    assert not refers_to_title("The registry has been described as the first.", "MedCom")


def test_unit_start_follows_chains_and_stops_at_paragraphs():
    text = ("The Zebra Registry was set up in 1950 to count zebras. It was the first of its kind. "
            "This made the park famous.\n\nThey also count giraffes on some days.\n\n"
            "The registry is old. Rangers keep every record in a fireproof safe. The registry is open to all.")
    spans = sentence_spans(text)
    title = "Zebra Registry"
    starts = [unit_start(text, spans, j, title) for j in range(len(spans))]
    assert starts[:3] == [0, 0, 0]  # "This made ..." leans on "It was ...", which leans on the first
    assert starts[3] is None  # a pronoun opening its paragraph
    para = text.index("The registry is old.")
    assert starts[4] == para  # a back-reference opening its paragraph stands alone
    assert starts[5] == spans[5][0]
    assert starts[6] == spans[5][0]  # "The registry ..." takes in the sentence before it


def test_a_leaning_sentence_is_joined_to_the_one_before(tmp_path, settings):
    """Span logic on a tiny index; the fake embedder is enough because relevance is not tested."""
    import kb
    from kb.core.records import BlockBuilder, Document
    from tests.fixtures.fake_embedder import FakeEmbedder

    b = BlockBuilder()
    b.heading("Zebra registry", 2)
    b.paragraph("The Zebra Registry was set up in 1950 to count every zebra in the park. "
                "It was the first registry of its kind anywhere in the world, rangers say.")
    b.paragraph("They also count giraffes on some days of the week, when the weather allows it.")
    doc = Document(id="zebra", title="Zebra Registry", url="https://example.org/zebra", source_type="registry",
                   text=b.text, blocks=tuple(b.blocks), organisation="Park", as_of="2026-01-01")
    fake = FakeEmbedder()
    kb.build_index([doc], tmp_path / "idx", fake, settings)
    index = kb.Index.open(tmp_path / "idx", fake, settings)
    points = talking_points(index, "zebra registry first in the world", 5)
    texts = [p.text for p in points]
    assert any(t.startswith("The Zebra Registry was set up") and t.endswith("rangers say.") for t in texts)
    assert not any(t.startswith(("It ", "They ")) for t in texts)  # never quoted without its antecedent
    for p in points:
        assert p.text == doc.text[p.citation.start:p.citation.end]
    joined = next(p for p in points if "rangers say" in p.text)
    assert joined.extended


# ---- Markdown ---------------------------------------------------------------------------------


def test_markdown_has_numbered_bullets_and_sources(research_points):
    md = to_markdown(TOPIC, research_points)
    lines = md.splitlines()
    assert lines[0] == f"**Talking points: {TOPIC}**"
    bullets = [line for line in lines if line.startswith("- ") and not line.startswith("- [")]
    sources = [line for line in lines if line.startswith("- [")]
    assert len(bullets) == len(sources) == 5
    for i, (bullet, source, p) in enumerate(zip(bullets, sources, research_points), start=1):
        assert bullet == f"- {p.text} [{i}]"
        assert source.startswith(f"- [{i}] {p.citation.title}") and "#:~:text=" in source
    assert "Sources:" in lines


# What an advisor's Markdown renderer makes of the pasted text: CommonMark with raw HTML allowed,
# plus GitHub's tables and strikethrough.
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
HOSTILE_TOPIC = "registry data [Official login](https://evil.example) <img src=x onerror=alert(1)> *urgent* `x`"
HOSTILE_TEXTS = [
    "# Reset your password at [our portal](https://evil.example/login) now.",
    "1977. The registry was founded; see <a href=\"https://evil.example\">this</a> &#91;x&#93;(y).",
    "- ~~Old~~ | new | ![pic](https://evil.example/p.png) \\[ref\\] [1]: https://evil.example",
    "> Quote with _emphasis_ and __strong__ and a hard\x00 control\x1b[2J character.",
]


def _hostile_point(i: int, text: str, url: str) -> TalkingPoint:
    citation = Citation(title=f"Title {i} [click](https://evil.example)", url=url, section="Sec *{i}* <b>x</b>",
                        source_type="agency", doc_id=f"doc-{i}", as_of="2026-01-31")
    return TalkingPoint(text=text, score=0.9, citation=citation)


def _visible(text: str) -> str:
    return " ".join("".join(ch if ch >= " " and not 0x7f <= ord(ch) <= 0x9f else " " for ch in text).split())


def test_markdown_makes_no_link_markup_or_html_from_untrusted_text():
    urls = ["https://example.org/page", "javascript:alert(1)", "https://example.org/a b<c>d\x01", "data:text/html,x"]
    points = [_hostile_point(i, t, u) for i, (t, u) in enumerate(zip(HOSTILE_TEXTS, urls), start=1)]
    md = to_markdown(HOSTILE_TOPIC, points)
    soup = BeautifulSoup(MARKDOWN.render(md), "html.parser")

    hrefs = [a["href"] for a in soup.find_all("a")]
    assert len(hrefs) == 2 and all(h.startswith("https://example.org/") for h in hrefs)  # only the http(s) sources
    assert hrefs[1].startswith("https://example.org/a%20b%3Cc%3Ed%01#:~:text=")  # encoded, not cut short
    assert not soup.find_all(["img", "em", "code", "del", "table", "h1", "blockquote", "ol", "b"])
    assert [s.get_text() for s in soup.find_all("strong")] == [f"Talking points: {HOSTILE_TOPIC}"]
    top, sources = soup.find_all("ul")
    assert not top.find("ul") and not sources.find("ul")  # no list smuggled into a list item
    for i, (li, p) in enumerate(zip(top.find_all("li"), points), start=1):
        assert li.get_text() == f"{_visible(p.text)} [{i}]"  # renders as exactly the quoted text
    for i, (li, p) in enumerate(zip(sources.find_all("li"), points), start=1):
        assert li.get_text().startswith(f"[{i}] {p.citation.title} — {p.citation.section} (as of 2026-01-31)")
    assert "javascript:" not in md and "data:text" not in md


def test_a_shared_link_topic_puts_no_link_among_the_real_sources(research_points):
    """The real points on a topic from a shared link: the only links are the five sources."""
    soup = BeautifulSoup(MARKDOWN.render(to_markdown(HOSTILE_TOPIC, research_points)), "html.parser")
    hrefs = [a["href"] for a in soup.find_all("a")]
    assert hrefs == [MARKDOWN.normalizeLink(p.source_url) for p in research_points]
    assert soup.find("strong").get_text() == f"Talking points: {HOSTILE_TOPIC}" and not soup.find("img")


# ---- API ---------------------------------------------------------------------------------------


def test_api_contract(client, corpus_index):
    r = client.get("/api/talking-points", query_string={"topic": TOPIC})
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["topic"] == TOPIC and body["answered"] is True and len(body["points"]) == 5
    assert len({p["citation"]["doc_id"] for p in body["points"]}) >= 3
    for p in body["points"]:
        assert set(p) >= {"text", "score", "citation"}
        c = p["citation"]
        assert set(c) >= {"title", "url", "section", "source_type", "doc_id", "start", "end"}
        doc = corpus_index.document(c["doc_id"])
        assert doc.text[c["start"]:c["end"]] == p["text"]
        assert c["source_link"].startswith(doc.url) and "#:~:text=" in c["source_link"]
        assert c["document_view"] == f"/doc/{c['doc_id']}?start={c['start']}&end={c['end']}#cited"


def test_api_n_bounds(client):
    assert len(client.get("/api/talking-points", query_string={"topic": TOPIC, "n": 1}).get_json()["points"]) == 1
    assert client.get("/api/talking-points", query_string={"topic": TOPIC, "n": 20}).status_code == 200


def test_api_off_topic_is_answered_false_with_related(client):
    body = client.get("/api/talking-points", query_string={"topic": OFF_TOPIC}).get_json()
    assert body["answered"] is False and body["points"] == [] and body["related"]
    assert body["answer_score"] < body["answer_cut"]


@pytest.mark.parametrize(
    "query, code",
    [
        ({}, "missing_topic"),
        ({"topic": ""}, "missing_topic"),
        ({"topic": "   "}, "missing_topic"),
        ({"topic": "x" * 1001}, "topic_too_long"),
        ({"topic": "a\x00b"}, "invalid_topic"),
        ({"topic": ["a", "b"]}, "repeated_topic"),
        ({"topic": "ok", "n": "0"}, "invalid_n"),
        ({"topic": "ok", "n": "21"}, "invalid_n"),
        ({"topic": "ok", "n": "-1"}, "invalid_n"),
        ({"topic": "ok", "n": "five"}, "invalid_n"),
        ({"topic": "ok", "n": "2.5"}, "invalid_n"),
        ({"topic": "ok", "n": ["3", "4"]}, "repeated_n"),
        ({"topic": "ok", "source_type": "blog"}, "invalid_source_type"),
    ],
)
def test_api_bad_input_is_400(client, query, code):
    r = client.get("/api/talking-points", query_string=query)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == code and err["message"]


# ---- page -------------------------------------------------------------------------------------


def test_page_lists_points_with_footnotes_and_markdown(client, research_points):
    html = client.get("/talking-points", query_string={"topic": TOPIC}).get_data(as_text=True)
    assert '<ol class="points" id="points">' in html
    for i in range(1, 6):
        assert f'href="#source-{i}"' in html and f'id="source-{i}"' in html
    assert '<textarea id="markdown"' in html and 'id="copy-md"' in html
    assert "/doc/" in html and "#cited" in html and "as of" in html
    assert "<script>" not in html.split("</head>")[1]  # no inline scripts in the body


def test_page_without_topic_is_a_form_and_bad_n_is_a_readable_400(client):
    html = client.get("/talking-points").get_data(as_text=True)
    assert '<input id="topic" name="topic"' in html and '<ol class="points"' not in html
    r = client.get("/talking-points", query_string={"topic": TOPIC, "n": "99"})
    assert r.status_code == 400 and "must be a whole number" in r.get_data(as_text=True)


def test_page_off_topic_says_no_good_match(client):
    html = client.get("/talking-points", query_string={"topic": OFF_TOPIC}).get_data(as_text=True)
    assert "No good match" in html and 'class="related"' in html and '<ol class="points"' not in html


# ---- the promotional page's selling points, as advisors type them ---------------------------------

PROMO = "digital-healthcare-denmark"
SELLING_POINTS = {
    # topic as an advisor types it -> the pages that detail the selling point (beside the promo page)
    "clinical trials in Denmark": {"research-access-health-data", "clinical-quality-databases-rkkp"},
    "testing new technology in Danish hospitals": set(),
    "digital literacy of the population": {"agency-for-digital-government", "sundhed-dk"},
    "linkable health data and biobanks": {"civil-registration-system", "danish-national-biobank",
                                          "research-access-health-data", "danish-health-data-authority"},
    "investment in new hospitals and health IT": {"health-reform-2024"},
    "talent for digital health companies": {"danish-life-science-cluster", "medicon-valley-alliance"},
    "telehealth for chronic patients": {"telehealth-copd", "telehealth-heart-failure", "telehealth-wounds"},
    "life science clusters in Denmark": {"danish-life-science-cluster", "medicon-valley-alliance",
                                         "health-tech-hub-copenhagen", "robocluster-odense-robotics",
                                         "bioinnovation-institute"},
    "Denmark in digital rankings": {"denmark-digital-rankings"},
}


KNOWN_THIN = {  # selling points where the points are not yet good enough; strict, so a fix shows
    "talent for digital health companies": "both models rank the promo's 'attractive talent pool' sentence "
    "below unrelated strategy sentences (MiniLM under 0.46 against 0.48), so the third point is off topic",
}


@pytest.mark.parametrize("topic", [
    pytest.param(t, marks=pytest.mark.xfail(strict=True, reason=KNOWN_THIN[t])) if t in KNOWN_THIN else t
    for t in sorted(SELLING_POINTS)])
def test_each_selling_point_gets_three_points_from_the_pages_behind_it(corpus_index, topic):
    b = brief(corpus_index, topic)
    assert b.answered, (topic, b.answer.score, b.answer.reason)
    assert len(b.points) >= 3, [p.text for p in b.points]
    sources = SELLING_POINTS[topic] | {PROMO}
    assert sum(p.citation.doc_id in sources for p in b.points) >= 3, [(p.citation.doc_id, p.text) for p in b.points]
    for p in b.points:
        doc = corpus_index.document(p.citation.doc_id)
        assert p.text == doc.text[p.citation.start:p.citation.end]
        assert is_self_contained(p.text), p.text  # no point needs an earlier sentence
        spans = sentence_spans(doc.text)
        starts = [s for s, _ in spans]
        j = starts.index(p.citation.start)
        assert unit_start(doc.text, spans, j, doc.title) == p.citation.start, p.text


def test_points_come_from_two_documents_when_two_support_the_topic(corpus_index):
    b = brief(corpus_index, "national registries for health research")
    assert len({p.citation.doc_id for p in b.points}) >= 2


def test_a_definite_description_is_joined_to_the_sentence_that_introduced_it():
    from kb.ingest.quotable import refers_back

    earlier = "Researchers apply through the national entry point for health data."
    assert refers_back("The entry point is the place to start for anyone asking how to get access.", earlier, "x")
    assert not refers_back("The entry point is the place to start.", "Nothing about it here.", "x")
    assert not refers_back("The registry was founded in 1942.", "The registry ...", "Danish Cancer Registry")
    assert not refers_back("The Danish Health Data Authority runs it.", earlier, "x")
    assert not is_self_contained("The agency also runs Digital Post.")


@pytest.mark.parametrize("topic", ["registerdata til forskning", "telemedicin til KOL-patienter",
                                   "hvordan får forskere adgang til sundhedsdata"])
def test_a_danish_topic_gets_points_from_several_pages_none_repeating_another(corpus_index, topic):
    """e5 serves Danish; its cosines crowd together, so MiniLM's cuts once left one point (POINT_CUTS)."""
    from kb.insight.talking_points import POINT_CUTS

    assert corpus_index.route(topic).dense == "multilingual"
    b = brief(corpus_index, topic)
    assert b.answered, (b.answer.score, b.answer.reason)
    assert len(b.points) == 5 and len({p.citation.doc_id for p in b.points}) >= 2, [p.text for p in b.points]
    e5 = corpus_index.dense("multilingual")
    vectors = e5.encoder.encode([p.text for p in b.points])
    for i, j in itertools.combinations(range(len(b.points)), 2):
        assert float(vectors[i] @ vectors[j]) < POINT_CUTS["multilingual"].duplicate_cosine
    for p in b.points:
        doc = corpus_index.document(p.citation.doc_id)
        assert p.text == doc.text[p.citation.start:p.citation.end] and is_self_contained(p.text)
