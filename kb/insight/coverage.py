"""Coverage of a topic list: which promised topics the corpus answers, treats thinly, or misses.

Each topic is judged like a question by the answer signal (kb.answer.signal): its answer score is
the estimated probability that a passage answers it, and the cuts calibrated at build time turn it
into a verdict — `covered` (a passage answers it), `thin` (the corpus touches the subject but no
passage answers it) or `gap` (it scores like the inputs we know the corpus does not answer).
"Covered" needs an answer, not shared vocabulary: "work permits for specialists" shares words with
the talent pages but no page says anything about permits. Every row gives the best passage with
its source, the reason for the verdict in words a person can check, and, for covered topics, the
distinct documents holding a passage that answers it.

The topic list is YAML (corpus/topics.yaml, edited by the content team)::

    topics:
      - topic: Telemedicine for COPD patients at home
        kind: selling-point          # free text: selling-point, entity, probe...
        expected: covered            # optional: covered | thin | gap (for evaluation)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kb.answer.signal import VERDICTS, AnswerThresholds, answer, thresholds, warm_queries
from kb.insight.csvexport import to_csv

if TYPE_CHECKING:
    from kb.search.index import Index

SEARCH_DEPTH = 100  # passages looked at per topic when counting supporting documents


class TopicsFileError(ValueError):
    """The topics file cannot be read; the message says where and why."""


@dataclass(frozen=True)
class Topic:
    topic: str
    kind: str = ""
    expected: str | None = None


@dataclass(frozen=True)
class Passage:
    text: str
    doc_id: str
    chunk_id: str
    title: str
    url: str
    section: str
    source_type: str


@dataclass(frozen=True)
class TopicCoverage:
    topic: Topic
    verdict: str
    answer_score: float
    top_dense: float
    background: float
    best: Passage | None
    supporting_documents: tuple[str, ...]  # distinct documents with a passage at or above the passage cut
    reason: str = ""  # why the verdict, in words a person can check against the best passage

    def as_dict(self) -> dict:
        best = self.best
        return {
            "topic": self.topic.topic, "kind": self.topic.kind, "expected": self.topic.expected,
            "verdict": self.verdict, "reason": self.reason, "answer_score": round(self.answer_score, 4),
            "top_cosine": round(self.top_dense, 4), "background": round(self.background, 4),
            "supporting_documents": len(self.supporting_documents),
            "supporting_doc_ids": list(self.supporting_documents),
            "best_passage": None if best is None else {
                "text": best.text, "doc_id": best.doc_id, "chunk_id": best.chunk_id, "title": best.title,
                "url": best.url, "section": best.section, "source_type": best.source_type,
            },
        }


@dataclass(frozen=True)
class CoverageReport:
    index_version: str
    thresholds: AnswerThresholds
    topics: list[TopicCoverage]  # weakest first: what to act on leads

    def counts(self) -> dict[str, int]:
        c = Counter(t.verdict for t in self.topics)
        return {v: c.get(v, 0) for v in VERDICTS}

    def summary(self) -> str:
        c = self.counts()
        return (f"{len(self.topics)} topics: {c['covered']} covered, {c['thin']} thin, {c['gap']} gap "
                f"(index {self.index_version}, answered cut {self.thresholds.margin:.3f}, "
                f"thin cut {self.thresholds.thin_margin:.3f}{'' if self.thresholds.calibrated else ', uncalibrated defaults'})")

    def as_dict(self) -> dict:
        t = self.thresholds
        return {
            "index_version": self.index_version,
            "thresholds": {"answered": t.margin, "thin": t.thin_margin, "calibrated": t.calibrated,
                           "signal": "answer score = estimated probability that a passage answers the topic "
                                     "(kb.answer.signal)"},
            "counts": self.counts(),
            "topics": [tc.as_dict() for tc in self.topics],
        }

    def to_csv(self) -> str:
        header = ("topic", "kind", "expected", "verdict", "reason", "answer_score", "top_cosine", "background",
                  "supporting_documents", "supporting_doc_ids", "best_doc_id", "best_title", "best_url",
                  "best_section", "best_passage")
        rows = []
        for tc in self.topics:
            b = tc.best
            rows.append((
                tc.topic.topic, tc.topic.kind, tc.topic.expected or "", tc.verdict, tc.reason, round(tc.answer_score, 4),
                round(tc.top_dense, 4), round(tc.background, 4), len(tc.supporting_documents),
                ";".join(tc.supporting_documents), b.doc_id if b else "", b.title if b else "",
                b.url if b else "", b.section if b else "", b.text if b else "",
            ))
        return to_csv(header, rows)


def load_topics(path: Path) -> list[Topic]:
    """Topics from YAML: a `topics:` list (or a bare list) of mappings with `topic`, or plain strings."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TopicsFileError(f"No topics file at {path}.") from exc
    except yaml.YAMLError as exc:
        raise TopicsFileError(f"{path} is not valid YAML: {exc}") from exc
    items = data.get("topics") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise TopicsFileError(f"{path} must hold a non-empty list under `topics:`.")
    topics, seen = [], set()
    for n, item in enumerate(items, start=1):
        if isinstance(item, str):
            item = {"topic": item}
        if not isinstance(item, dict) or not isinstance(item.get("topic"), str) or not item["topic"].strip():
            raise TopicsFileError(f"{path}: topic #{n} needs a non-empty `topic:` text.")
        expected = item.get("expected")
        if expected is not None and expected not in VERDICTS:
            raise TopicsFileError(f"{path}: topic #{n} has expected {expected!r}; use one of {', '.join(VERDICTS)}.")
        text = " ".join(item["topic"].split())
        if text.lower() in seen:
            raise TopicsFileError(f"{path}: topic #{n} ({text!r}) is listed twice.")
        seen.add(text.lower())
        topics.append(Topic(topic=text, kind=str(item.get("kind") or ""), expected=expected))
    return topics


def topic_coverage(index: "Index", topic: Topic, depth: int = SEARCH_DEPTH) -> TopicCoverage:
    """Score one topic: the answer signal (verdict, its reason, the best passage) and the documents
    with a passage that answers it. "covered" needs an answer, not shared vocabulary."""
    signal = answer(index, topic.topic)
    if signal.top_chunk_id is None:
        return TopicCoverage(topic, "gap", 0.0, 0.0, signal.background, None, (), signal.reason)
    hits = index.search(topic.topic, k=max(1, min(depth, index.chunk_count)), mode="dense").hits
    chunk = index.chunk(signal.top_chunk_id)
    # The best passage answers an answered topic by definition, whichever model found it; the
    # others count when the serving model's cosine clears the per-passage cut.
    supporting = tuple(dict.fromkeys([chunk.doc_id] + [
        h.chunk.doc_id for h in hits if (h.dense_score or 0.0) >= signal.passage_cut]))
    c = index.citation(chunk)
    best = Passage(text=chunk.text, doc_id=c.doc_id, chunk_id=chunk.id, title=c.title, url=c.url,
                   section=c.section, source_type=c.source_type)
    return TopicCoverage(topic, signal.verdict, signal.answer_score, signal.top_dense or 0.0, signal.background, best,
                         supporting if signal.answered else (), signal.reason)


def coverage_report(index: "Index", topics: list[Topic]) -> CoverageReport:
    """The report over all topics, weakest first (ties: topic text)."""
    cuts = thresholds(index)
    warm_queries((index.dense(n).encoder for n, r in index.retrievers.items() if r.kind == "dense"),
                 [t.topic for t in topics])
    rows = [topic_coverage(index, t) for t in topics]
    rows.sort(key=lambda r: (r.answer_score, r.topic.topic.lower()))
    return CoverageReport(index_version=index.version, thresholds=cuts, topics=rows)
