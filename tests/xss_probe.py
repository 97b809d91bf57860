"""A corpus page and a query full of markup, for checking that every page renders them as text.

The probe page joins the real corpus in a copy of the session index, so only its own few chunks
are encoded (the build reuses every other vector) and it competes with real pages for relevance.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from kb.core.records import BlockBuilder, Document

SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
PROBE_QUERY = f"zebra migration count {SCRIPT} {IMG}"
PROBE_SENTENCE = (
    f"The ranger handbook says {SCRIPT} must never run and {IMG} must stay plain text in every zebra migration count."
)


# A crawled page's metadata may carry any URL; only http(s) ones may become links.
JS_URL = "javascript:alert(3)"


def probe_document() -> Document:
    b = BlockBuilder()
    b.heading(f"Zebra migration {SCRIPT}", 2)
    b.paragraph("Zebra migration in the probe park is counted every spring by rangers who walk the plains on foot. "
                + PROBE_SENTENCE)
    b.heading(f"Counting rules {IMG}", 2)
    b.paragraph(f"Each zebra herd is counted twice, once at dawn and once at dusk, and the two counts are averaged. "
                f"Rangers record the herd size, the water holes visited and notes such as {IMG} in the migration log.")
    return Document(
        id="xss-probe", title=f"Zebra migration probe {SCRIPT} {IMG}",
        url="https://example.org/zebra?x=%22%3E%3Cimg%20src=x%20onerror=alert(2)%3E", source_type=f"probe{IMG}",
        text=b.text, blocks=tuple(b.blocks), organisation=f"Probe Park {SCRIPT}", as_of="2026-01-31",
        sources=(f"https://example.org/source?{IMG}", JS_URL, f" data:text/html,{SCRIPT}"), path="xss-probe.md",
    )


def build_probe_index(corpus_index_dir: Path, target: Path, corpus_docs, embedder, settings) -> Path:
    """A copy of the session index with the probe page added (a normal, incremental build)."""
    import kb

    shutil.copytree(corpus_index_dir, target, ignore=shutil.ignore_patterns(".staging-*", ".build.lock"))
    kb.build_index([*corpus_docs, probe_document()], target, embedder, settings)
    return target
