"""What the product makes of search results for people: highlights, talking points, facets,
related topics, the coverage report, the query log and the questions report, stale content and the
build history.

The web app imports these names from here, never from the modules behind them.
"""
from kb.insight.build_history import BuildEntry, DocumentChanges, build_history
from kb.insight.coverage import CoverageReport, Topic, TopicCoverage, TopicsFileError, coverage_report, load_topics
from kb.insight.facets import Facets, FacetValue, facet_counts
from kb.insight.highlight import Highlight, best_sentences
from kb.insight.querylog import (PeriodCounts, QueryLog, QueryLogUnavailable, QueryRecord, record_of, utc_now,
                                 with_answer)
from kb.insight.question_report import MAX_GROUPED_WORDINGS, TABLES, QuestionReport, question_report
from kb.insight.related import RelatedTopic, related_topics
from kb.insight.staleness import (DatedFact, SourceEvent, SourceEvents, SourceFlag, StalenessReport, StalePage,
                                  flag_citing_pages, read_source_events, staleness_report, write_source_events)
from kb.insight.talking_points import Briefing, TalkingPoint, brief, talking_points, to_markdown
from kb.insight.textfragment import source_link, web_url

__all__ = [
    "BuildEntry", "DatedFact", "DocumentChanges", "SourceEvent", "SourceEvents", "SourceFlag", "StalePage",
    "StalenessReport", "build_history", "flag_citing_pages", "read_source_events", "staleness_report",
    "write_source_events",
    "MAX_GROUPED_WORDINGS", "TABLES", "Briefing", "CoverageReport", "FacetValue", "Facets", "Highlight", "PeriodCounts",
    "QueryLog", "QueryLogUnavailable", "QueryRecord",
    "QuestionReport", "RelatedTopic", "TalkingPoint", "Topic", "TopicCoverage",
    "TopicsFileError", "best_sentences", "brief", "coverage_report", "facet_counts", "load_topics", "question_report",
    "record_of", "related_topics", "source_link", "talking_points", "to_markdown", "utc_now", "web_url",
    "with_answer",
]
