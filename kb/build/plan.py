"""Planning a build: what the new version will hold and which vectors must be computed.

Pure bookkeeping, no writes: the documents (unique ids), their chunks in row order, the text each
dense model sees per chunk, the spans inside chunks that are scored later (sentences, talking
points; kb.ingest.quotable), and per model the key of every vector — a hash of (model
fingerprint, the text encoded). A key still held by the live version means its vector is copied, not
encoded. The fingerprints decide whether there is anything to build at all.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kb.build.report import BuildError
from kb.core.records import Chunk, Document
from kb.core.settings import Settings
from kb.index.layout import FORMAT_VERSION, IndexCorruptError, IndexLayout, read_manifest
from kb.index.store import StoredSpan
from kb.ingest.chunking import chunk_document, embedding_text
from kb.ingest.quotable import document_spans
from kb.models import Encoders


@dataclass(frozen=True)
class PreviousVersion:
    folder: Path
    manifest: dict


@dataclass
class BuildPlan:
    docs: list[Document]
    chunked: list[tuple[Document, list[Chunk]]]
    texts: list[str]  # what the models see, one per chunk row
    spans: list[StoredSpan]  # sentences and points inside the chunks, in id order
    keys: dict[str, dict[str, list[str]]]  # per dense retriever and kind (chunk, span), every vector's key
    corpus_fingerprint: str
    settings_fingerprint: str
    extra_fingerprint: str
    previous: PreviousVersion | None

    @property
    def chunk_count(self) -> int:
        return len(self.texts)

    def unchanged(self) -> bool:
        """The live version already holds exactly this corpus, built with these settings."""
        prev = self.previous.manifest if self.previous else None
        return (prev is not None and prev.get("corpus_fingerprint") == self.corpus_fingerprint
                and prev.get("settings_fingerprint") == self.settings_fingerprint
                and prev.get("extra_fingerprint", "") == self.extra_fingerprint)


def plan_build(documents: Iterable[Document], layout: IndexLayout, encoders: Encoders, settings: Settings,
               extra_fingerprint: str = "") -> BuildPlan:
    docs = unique_documents(documents)
    if not docs:
        raise BuildError("No documents to index: check the corpus folder.")
    return BuildPlan(docs=docs, chunked=[], texts=[], spans=[], keys={}, corpus_fingerprint=corpus_fingerprint(docs),
                     settings_fingerprint=settings_fingerprint(encoders, settings), extra_fingerprint=extra_fingerprint,
                     previous=previous_version(layout))


def chunk_plan(plan: BuildPlan, encoders: Encoders, settings: Settings, *, spans: bool = True) -> None:
    """Chunk every document (in the primary model's word pieces), find the spans scored later, and
    key every vector to compute."""
    plan.chunked = [(doc, chunk_document(doc, settings.chunking, encoders.primary.count_tokens)) for doc in plan.docs]
    plan.texts = [embedding_text(doc.title, c) for doc, chunks in plan.chunked for c in chunks]
    plan.spans = []
    first_row = 0
    for doc, chunks in plan.chunked if spans else ():
        plan.spans += [StoredSpan(first_row + s.chunk, s.start, s.end, s.sentence, s.point, s.extended,
                                  doc.text[s.start:s.end]) for s in document_spans(doc, chunks)]
        first_row += len(chunks)
    plan.keys = {name: {"chunk": [vector_key(enc.fingerprint, t) for t in plan.texts],
                        "span": [vector_key(enc.fingerprint, s.text) for s in plan.spans]}
                 for name, enc in encoders.items()}


def unique_documents(documents: Iterable[Document]) -> list[Document]:
    by_id: dict[str, Document] = {}
    for doc in documents:
        if doc.id in by_id:
            raise BuildError(f"Two documents share the id {doc.id!r} ({by_id[doc.id].path} and {doc.path}).")
        by_id[doc.id] = doc
    return [by_id[k] for k in sorted(by_id)]


def settings_fingerprint(encoders: Encoders, settings: Settings) -> str:
    """Everything besides the corpus that shapes a version: models, chunker, vector index settings."""
    payload = json.dumps(
        {"models": {name: enc.fingerprint for name, enc in encoders.items()}, "chunking": settings.chunking.as_dict(),
         "exact_max": settings.exact_index_max_vectors,
         "hnsw": [settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search],
         "approx": [settings.approx_index, settings.ivf_nlist, settings.ivf_nprobe], "format": FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def corpus_fingerprint(docs: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(doc.content_hash().encode())
    return digest.hexdigest()


def vector_key(model_fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{model_fingerprint}\x00{text}".encode("utf-8")).hexdigest()[:32]


def previous_version(layout: IndexLayout) -> PreviousVersion | None:
    current = layout.current_dir()
    if current is None or not current.is_dir():
        return None
    try:
        return PreviousVersion(current, read_manifest(current))
    except IndexCorruptError:
        return None
