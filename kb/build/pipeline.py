"""Building an index version: plan, stage (encode what changed, write aside), publish.

Vectors are keyed by a hash of (model fingerprint, text the model sees), so a rebuild encodes
only chunks whose text or context changed; everything else is copied from the live version. An
unchanged corpus with unchanged settings is a no-op.
"""
from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from kb.build.plan import BuildPlan, chunk_plan, plan_build
from kb.build.publish import build_lock, checkpoint, clear_stale_staging, publish
from kb.build.report import BuildReport
from kb.build.stage import PostBuildFn, ProgressFn, encode_vectors, run_post_build, write_version
from kb.core.records import Document
from kb.core.settings import Settings
from kb.index.layout import IndexLayout
from kb.models import PRIMARY, Encoder, Encoders


def build_index(
    documents: Iterable[Document],
    index_dir: Path,
    encoders: Encoder | Mapping[str, Encoder],
    settings: Settings,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    extra_manifest: dict | None = None,
    post_build: PostBuildFn | None = None,
    extra_fingerprint: str = "",
    spans: bool = True,
) -> BuildReport:
    """Build a new version of the index in `index_dir` and make it current.

    `encoders` is one encoder (the English model) or a mapping of dense retriever name to
    encoder. `post_build` runs on the finished but not yet published version (an open
    `kb.Index`) and returns facts to record in its manifest — e.g. the calibrated "answered"
    threshold — so they are in place before any reader can see the version. `extra_fingerprint`
    names what else the version depends on (e.g. the hash of the calibration question files):
    when it changes, an otherwise unchanged corpus is rebuilt (every vector reused). `spans=False`
    stores no sentence and talking-point vectors: for benchmark indexes, which are only searched.
    """
    t0 = time.perf_counter()
    encoders = Encoders.of(encoders)
    layout = IndexLayout(Path(index_dir))
    with build_lock(layout):
        clear_stale_staging(layout)
        plan = plan_build(documents, layout, encoders, settings, extra_fingerprint + ("" if spans else ":no-spans"))
        if not force and plan.unchanged():
            return _unchanged_report(plan, layout, t0)
        chunk_plan(plan, encoders, settings, spans=spans)
        vectors = encode_vectors(plan, encoders, settings, progress)
        checkpoint(settings, "encoded")
        build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        staging = layout.staging_dir(build_id)
        staging.mkdir(parents=True)
        try:
            manifest = write_version(staging, build_id, plan, vectors, encoders, settings, t0, extra_manifest)
            checkpoint(settings, "staged")
            if post_build is not None:
                run_post_build(staging, manifest, encoders, settings, post_build)
            publish(layout, staging, build_id, settings)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return _report(plan, layout, build_id, {name: v.encoded["chunk"] for name, v in vectors.items()},
                   {name: v.encoded["span"] for name, v in vectors.items()}, t0)


def _unchanged_report(plan: BuildPlan, layout: IndexLayout, t0: float) -> BuildReport:
    prev = plan.previous.manifest if plan.previous else {}
    chunks = prev["counts"]["chunks"]
    names = list((prev.get("retrievers") or {}).keys())
    dense = [n for n in names if prev["retrievers"][n].get("kind") == "dense"]
    return BuildReport(
        build_id=prev["build_id"], index_dir=layout.root, documents=prev["counts"]["documents"], chunks=chunks,
        encoded=0, reused=chunks, seconds=time.perf_counter() - t0, unchanged=True,
        encoded_by={n: 0 for n in dense}, reused_by={n: chunks for n in dense},
        spans=prev["counts"].get("spans", 0), spans_encoded_by={n: 0 for n in dense},
    )


def _report(plan: BuildPlan, layout: IndexLayout, build_id: str, encoded: dict[str, int], spans_encoded: dict[str, int],
            t0: float) -> BuildReport:
    prev_docs = (plan.previous.manifest if plan.previous else {}).get("documents", {})
    doc_hashes = {d.id: d.content_hash() for d in plan.docs}
    n = plan.chunk_count
    primary = encoded[PRIMARY]
    return BuildReport(
        build_id=build_id, index_dir=layout.root, documents=len(plan.docs), chunks=n, encoded=primary,
        reused=n - primary, seconds=time.perf_counter() - t0, unchanged=False,
        added_documents=sum(1 for d in doc_hashes if d not in prev_docs),
        changed_documents=sum(1 for d, h in doc_hashes.items() if d in prev_docs and prev_docs[d] != h),
        removed_documents=sum(1 for d in prev_docs if d not in doc_hashes),
        encoded_by=dict(encoded), reused_by={name: n - e for name, e in encoded.items()},
        spans=len(plan.spans), spans_encoded_by=dict(spans_encoded),
    )
