"""Staging a build: encode what the live version cannot lend, then write the new version aside.

Everything here happens in `.staging-<id>`, invisible to readers: the chunk store (documents,
chunks, keyword index, vector keys), each dense retriever's files, the manifest with the
checksum of every file, and facts a `post_build` hook measures on the finished version (the
calibrated answer cut) — so a version is complete before anyone can open it.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kb.build.plan import BuildPlan, PreviousVersion
from kb.core.fsutil import atomic_write_text, fsync_file
from kb.core.settings import Settings
from kb.index.layout import FORMAT_VERSION, MANIFEST, file_checksums
from kb.index.store import DATABASE, ChunkStore
from kb.models import Encoder, Encoders
from kb.search.dense import DenseRetriever
from kb.search.index import Index
from kb.search.keyword import BM25_WEIGHTS

ProgressFn = Callable[[str, int, int], None]  # (retriever, done, total) texts encoded
PostBuildFn = Callable[[Index], dict]  # (the staged version, open) -> manifest fields
KINDS = {"chunk": "vectors", "span": "spans"}  # vector kind -> DenseRetriever file


@dataclass
class Encoded:
    """One dense retriever's vectors for a new version, and how many of each kind were encoded."""

    chunks: np.ndarray
    spans: np.ndarray
    encoded: dict[str, int]  # kind -> texts encoded (the rest were copied from the live version)


def encode_vectors(plan: BuildPlan, encoders: Encoders, settings: Settings,
                   progress: ProgressFn | None = None) -> dict[str, Encoded]:
    """Per dense retriever: chunk and span vectors, encoding only what the live version cannot lend."""
    span_texts = [s.text for s in plan.spans]
    out: dict[str, Encoded] = {}
    for name, encoder in encoders.items():
        vectors, todo = {}, {}
        for kind in KINDS:
            keys = plan.keys[name][kind]
            vectors[kind] = np.zeros((len(keys), encoder.dim), dtype=np.float32)
            reuse = reusable_vectors(plan.previous, name, kind, set(keys), encoder) if plan.previous else {}
            todo[kind] = [i for i, key in enumerate(keys) if key not in reuse]
            for i, key in enumerate(keys):
                if key in reuse:
                    vectors[kind][i] = reuse[key]
        total = len(todo["chunk"]) + len(todo["span"])
        report = (lambda done, _, base, n=name: progress(n, base + done, total)) if progress else None
        encode_into(vectors["chunk"], todo["chunk"], plan.texts, encoder, settings.encode_batch_size,
                    report and (lambda d, t: report(d, t, 0)))
        encode_into(vectors["span"], todo["span"], span_texts, encoder, settings.encode_batch_size,
                    report and (lambda d, t: report(d, t, len(todo["chunk"]))))
        out[name] = Encoded(vectors["chunk"], vectors["span"], {k: len(v) for k, v in todo.items()})
    return out


def reusable_vectors(previous: PreviousVersion, name: str, kind: str, wanted: set[str],
                     encoder: Encoder) -> dict[str, np.ndarray]:
    """Vectors of `kind` of the live version's retriever `name` whose key is still wanted;
    nothing if anything looks off."""
    entry = (previous.manifest.get("retrievers") or {}).get(name, {})
    if entry.get("model", {}).get("fingerprint") != encoder.fingerprint:
        return {}
    try:
        vectors = np.load(previous.folder / DenseRetriever.file_names(name)[KINDS[kind]], mmap_mode="r")
        store = ChunkStore(previous.folder / DATABASE)
        try:
            keys = store.vector_keys(name, kind)
        finally:
            store.close()
    except (OSError, ValueError, RuntimeError):
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != encoder.dim:
        return {}
    return {key: np.array(vectors[row]) for row, key in keys if key in wanted and row < len(vectors)}


def encode_into(vectors: np.ndarray, todo: list[int], texts: list[str], encoder: Encoder, batch_size: int,
                progress: Callable[[int, int], None] | None) -> None:
    """Encode rows `todo` in length order (batches pad to similar lengths: much faster on CPU), in
    slices so the progress bar moves."""
    order = sorted(todo, key=lambda i: len(texts[i]))
    step = max(batch_size * 8, 1)
    for pos in range(0, len(order), step):
        ids = order[pos: pos + step]
        vectors[ids] = encoder.encode([texts[i] for i in ids], batch_size=batch_size)
        if progress:
            progress(min(pos + step, len(order)), len(order))
    if progress and not order:
        progress(0, 0)


def write_version(staging: Path, build_id: str, plan: BuildPlan, vectors: dict[str, Encoded],
                  encoders: Encoders, settings: Settings, started: float, extra_manifest: dict | None = None) -> dict:
    """Every data file of the new version, fsynced, and its manifest; returns the manifest."""
    ChunkStore.write(staging / DATABASE, plan.chunked, plan.spans, plan.keys)
    retrievers: dict[str, dict] = {
        name: DenseRetriever.write(staging, name, vectors[name].chunks, vectors[name].spans, enc, settings)
        for name, enc in encoders.items()}
    retrievers["keyword"] = {"kind": "keyword", "bm25_weights": list(BM25_WEIGHTS)}
    files = [DATABASE] + [f for e in retrievers.values() for f in (e.get("files") or {}).values()]
    for name in files:
        fsync_file(staging / name)
    encoded = {name: v.encoded["chunk"] for name, v in vectors.items()}
    manifest = {
        "format": FORMAT_VERSION,
        "build_id": build_id,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "retrievers": retrievers,
        "chunker": {**settings.chunking.as_dict(), "token_counter": f"word pieces of {encoders.primary.name}"},
        "counts": {"documents": len(plan.docs), "chunks": plan.chunk_count, "spans": len(plan.spans)},
        "build": {"encoded": encoded, "reused": {n: plan.chunk_count - e for n, e in encoded.items()},
                  "spans_encoded": {name: v.encoded["span"] for name, v in vectors.items()},
                  "seconds": round(time.perf_counter() - started, 3)},
        "corpus_fingerprint": plan.corpus_fingerprint,
        "settings_fingerprint": plan.settings_fingerprint,
        "extra_fingerprint": plan.extra_fingerprint,
        "documents": {d.id: d.content_hash() for d in plan.docs},
        "files": file_checksums(staging, files),
        **(extra_manifest or {}),
    }
    write_manifest(staging, manifest)
    return manifest


def run_post_build(staging: Path, manifest: dict, encoders: Encoders, settings: Settings,
                   post_build: PostBuildFn) -> None:
    """Open the staged version, let the hook measure it, record what it returns in the manifest."""
    staged = Index(staging, manifest, encoders, settings)
    try:
        manifest.update(post_build(staged))
    finally:
        staged.close()
    write_manifest(staging, manifest)


def write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
