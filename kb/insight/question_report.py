"""What people asked in a period, from the query log: what went unanswered, what is popular,
and which documents nobody saw.

The counting is the database's (`QueryLog.period`: grouped by normalised wording, with counts,
last seen, the latest answer score, the documents ranked first, and every document in some top
5); this module adds only what needs the model:

* **Unanswered** and **weakly answered** questions: wordings whose latest scored ask falls in the
  `gap` or `thin` band of the current index's calibrated cuts (a row without an answer score
  is counted as asked, not judged).
* **Near-duplicates grouped**: "when was cpr introduced" and "When was the CPR number introduced?"
  are one need. The distinct wordings are embedded in one batched model call and grouped with
  sentence-transformers' community detection at cosine >= `NEAR_DUPLICATE_COSINE` (0.80: measured,
  rewordings with the same key words score 0.86-0.92, different questions on one subject such as
  "corporate tax rate" vs "VAT rate" 0.74). Each group shows its most asked wording, its size,
  how often it was asked and when last.
* **Popular queries**: the same groups over every wording, most asked first.
* **Documents never in anyone's top 5** during the period.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kb.answer.signal import AnswerThresholds
from kb.insight.csvexport import to_csv
from kb.insight.querylog import PeriodCounts, WordingCount

if TYPE_CHECKING:
    from kb.search.index import Index

NEAR_DUPLICATE_COSINE = 0.80
MAX_GROUPED_WORDINGS = 5000  # distinct wordings embedded per report; the most asked are kept
TABLES = ("unanswered", "weak", "popular", "unseen_documents")


@dataclass(frozen=True)
class QuestionGroup:
    question: str  # the most asked wording
    variants: tuple[str, ...]  # the other wordings, most asked first
    count: int  # times asked in the period, all wordings
    last_seen: str
    answered_share: float | None  # share of the scored asks that were answered; None: none scored
    answer_score: float | None  # latest answer score of the representative wording
    top_doc_id: str | None  # the document most often ranked first

    def as_row(self) -> tuple:
        return (self.question, self.count, len(self.variants) + 1, self.last_seen,
                None if self.answer_score is None else round(self.answer_score, 4),
                None if self.answered_share is None else round(self.answered_share, 3),
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
    truncated: bool  # more distinct wordings than were grouped; the rarest were left out

    def table_csv(self, table: str) -> str:
        if table == "unseen_documents":
            return to_csv(("doc_id", "title", "source_type"),
                          ((d.doc_id, d.title, d.source_type) for d in self.unseen_documents))
        if table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}; got {table!r}")
        return to_csv(GROUP_HEADER, (g.as_row() for g in getattr(self, table)))


def question_report(
    index: "Index",
    counts: PeriodCounts,
    cuts: AnswerThresholds,
    *,
    since: str = "",
    duplicate_cosine: float = NEAR_DUPLICATE_COSINE,
) -> QuestionReport:
    """Every table of the questions page from the database's counts (most asked wording first)."""
    ranked = list(counts.wordings)
    verdicts = [cuts.verdict(w.answer_score) for w in ranked]
    vectors = index.embedder.encode([w.text for w in ranked]) if ranked else np.zeros((0, 1), dtype=np.float32)

    def grouped(members: list[int]) -> list[QuestionGroup]:
        if not members:
            return []
        from sentence_transformers.util import community_detection

        communities = community_detection(vectors[members], threshold=duplicate_cosine, min_community_size=1)
        groups = [_group([ranked[members[i]] for i in c]) for c in communities]
        return sorted(groups, key=lambda g: (-g.count, g.last_seen, g.question))

    everyone = range(len(ranked))
    unseen = [UnseenDocument(d.doc_id, d.title, d.source_type)
              for d in sorted(index.documents.values(), key=lambda d: d.doc_id) if d.doc_id not in counts.seen_doc_ids]
    return QuestionReport(
        since=since, rows=counts.rows, distinct=counts.distinct,
        unanswered=grouped([i for i in everyone if verdicts[i] == "gap"]),
        weak=grouped([i for i in everyone if verdicts[i] == "thin"]),
        popular=grouped(list(everyone)), unseen_documents=unseen, truncated=counts.distinct > len(ranked),
    )


def _group(members: list[WordingCount]) -> QuestionGroup:
    members = sorted(members, key=lambda w: (-w.asked, w.text))
    head = members[0]
    count = sum(w.asked for w in members)
    scored = sum(w.scored for w in members)
    top_docs: Counter = Counter()
    for w in members:
        top_docs.update(dict(w.top_docs))
    top_doc = min(top_docs.items(), key=lambda d: (-d[1], d[0]))[0] if top_docs else None
    return QuestionGroup(
        question=head.text, variants=tuple(w.text for w in members[1:]), count=count,
        last_seen=max(w.last_seen for w in members),
        answered_share=sum(w.answered for w in members) / scored if scored else None,
        answer_score=head.answer_score, top_doc_id=top_doc,
    )
