"""What people asked in a period, read from the query log: what went unanswered, what is popular,
and which documents nobody saw.

* **Unanswered** and **weakly answered** questions: rows whose answer score (kb.answer.signal) falls
  in the `gap` or `thin` band of the current index's calibrated cuts.
* **Near-duplicates grouped**: "when was cpr introduced" and "When was the CPR number introduced?"
  are one need. Distinct wordings are embedded in one batched model call and grouped with
  sentence-transformers' community detection at cosine >= `NEAR_DUPLICATE_COSINE` (0.80: measured,
  rewordings with the same key words score 0.86-0.92, different questions on one subject such as
  "corporate tax rate" vs "VAT rate" 0.74). Each group shows its most asked wording, its size,
  how often it was asked and when last.
* **Popular queries**: the same groups over every row, most asked first.
* **Documents never in anyone's top 5** during the period.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kb.answer.signal import AnswerThresholds
from kb.insight.csvexport import to_csv
from kb.insight.querylog import QueryRecord

if TYPE_CHECKING:
    from kb.search.index import Index

NEAR_DUPLICATE_COSINE = 0.80
MAX_GROUPED_WORDINGS = 5000  # distinct wordings embedded per report; the most asked are kept
TABLES = ("unanswered", "weak", "popular", "unseen_documents")


@dataclass
class _Wording:
    """All rows with one normalised wording."""

    text: str  # the most frequent original spelling
    count: int = 0
    last_seen: str = ""
    verdict: str | None = None  # of the latest row
    answer_score: float | None = None  # of the latest row
    answered: int = 0
    spellings: Counter = field(default_factory=Counter)
    top_docs: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class QuestionGroup:
    question: str  # the most asked wording
    variants: tuple[str, ...]  # the other wordings, most asked first
    count: int  # times asked in the period, all wordings
    last_seen: str
    answered_share: float  # share of the asks that were answered (verdict covered)
    answer_score: float | None  # latest answer score of the representative wording
    top_doc_id: str | None  # the document most often ranked first

    def as_row(self) -> tuple:
        return (self.question, self.count, len(self.variants) + 1, self.last_seen,
                None if self.answer_score is None else round(self.answer_score, 4), round(self.answered_share, 3),
                self.top_doc_id or "", " | ".join(self.variants))


GROUP_HEADER = ("question", "asked", "wordings", "last_seen", "answer_score", "answered_share", "top_doc_id", "variants")


@dataclass(frozen=True)
class UnseenDocument:
    doc_id: str
    title: str
    source_type: str


@dataclass(frozen=True)
class QuestionReport:
    since: str
    rows: int
    distinct: int
    unanswered: list[QuestionGroup]
    weak: list[QuestionGroup]
    popular: list[QuestionGroup]
    unseen_documents: list[UnseenDocument]
    truncated: bool  # more distinct wordings than MAX_GROUPED_WORDINGS; the rarest were left out

    def table_csv(self, table: str) -> str:
        if table == "unseen_documents":
            return to_csv(("doc_id", "title", "source_type"),
                          ((d.doc_id, d.title, d.source_type) for d in self.unseen_documents))
        if table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}; got {table!r}")
        return to_csv(GROUP_HEADER, (g.as_row() for g in getattr(self, table)))


def normalise(query: str) -> str:
    return " ".join(query.casefold().split())


def question_report(
    index: "Index",
    records: list[QueryRecord],
    cuts: AnswerThresholds,
    *,
    since: str = "",
    duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
    max_wordings: int = MAX_GROUPED_WORDINGS,
) -> QuestionReport:
    """Build every table of the questions page from log rows (oldest first)."""
    wordings: dict[str, _Wording] = {}
    seen_docs: set[str] = set()
    for rec in records:
        seen_docs.update(rec.top5_doc_ids)
        key = normalise(rec.query)
        if not key:
            continue
        w = wordings.setdefault(key, _Wording(text=rec.query))
        verdict = cuts.verdict(answer_score=rec.answer_score, top_dense=rec.top_dense_score)
        w.count += 1
        w.spellings[rec.query] += 1
        w.last_seen = max(w.last_seen, rec.at)
        w.verdict, w.answer_score = verdict, rec.answer_score
        w.answered += verdict == "covered"
        if rec.top_doc_id:
            w.top_docs[rec.top_doc_id] += 1
    for w in wordings.values():
        w.text = w.spellings.most_common(1)[0][0]

    ranked = sorted(wordings.values(), key=lambda w: (-w.count, w.text))
    truncated = len(ranked) > max_wordings
    ranked = ranked[:max_wordings]
    vectors = index.embedder.encode([w.text for w in ranked]) if ranked else np.zeros((0, 1), dtype=np.float32)

    def grouped(members: list[int]) -> list[QuestionGroup]:
        if not members:
            return []
        from sentence_transformers.util import community_detection

        communities = community_detection(vectors[members], threshold=duplicate_cosine, min_community_size=1)
        groups = [_group([ranked[members[i]] for i in c]) for c in communities]
        return sorted(groups, key=lambda g: (-g.count, g.last_seen, g.question))

    everyone = list(range(len(ranked)))
    unanswered = grouped([i for i in everyone if ranked[i].verdict == "gap"])
    weak = grouped([i for i in everyone if ranked[i].verdict == "thin"])
    popular = grouped(everyone)
    unseen = [UnseenDocument(d.doc_id, d.title, d.source_type)
              for d in sorted(index.documents.values(), key=lambda d: d.doc_id) if d.doc_id not in seen_docs]
    return QuestionReport(
        since=since, rows=len(records), distinct=len(wordings), unanswered=unanswered, weak=weak,
        popular=popular, unseen_documents=unseen, truncated=truncated,
    )


def _group(members: list[_Wording]) -> QuestionGroup:
    members = sorted(members, key=lambda w: (-w.count, w.text))
    head = members[0]
    count = sum(w.count for w in members)
    top_docs: Counter = Counter()
    for w in members:
        top_docs.update(w.top_docs)
    return QuestionGroup(
        question=head.text, variants=tuple(w.text for w in members[1:]), count=count,
        last_seen=max(w.last_seen for w in members), answered_share=sum(w.answered for w in members) / count,
        answer_score=head.answer_score, top_doc_id=top_docs.most_common(1)[0][0] if top_docs else None,
    )
