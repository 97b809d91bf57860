"""Indexing throughput on a BEIR corpus (SciFact): full build vs bare encoding, and rebuilds.

    .venv/bin/python bench/indexing.py /work/shared/benchmarks/scifact [--out var/bench/indexing.json]

The corpus is read with indexer.evaluate's BEIR loader (the one the quality benchmarks use) from
where it lies; nothing is copied into the repository. Measured, in this order:
  bare encode    SentenceTransformer.encode(all chunk texts, batch_size=KB_ENCODE_BATCH_SIZE) —
                 the same texts the build embeds (title + section + chunk), no kb code around it
  full build     kb.build_index into an empty folder: chunking, encoding, SQLite + FTS5, FAISS,
                 checksums, manifest, swap
  no-change      kb.build_index again with the same documents (the no-op check)
  forced         the same with force=True: every vector reused, every file rewritten
  one document   one document's text edited: what is re-encoded, and how long it takes
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import emit, machine

import kb
from indexer.evaluate import beir_document, load_beir_corpus
from kb.ingest.chunking import chunk_document, embedding_text


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to encode."""

    def __init__(self, real: kb.Embedder) -> None:
        self._real = real
        self.texts: list[str] = []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def encode(self, texts, *args, **kwargs):
        self.texts.extend(texts)
        return self._real.encode(texts, *args, **kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("beir", type=Path, help="BEIR folder with corpus.jsonl (e.g. /work/shared/benchmarks/scifact)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="PyTorch threads (default: PyTorch's own choice, one per core)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    if args.torch_threads:
        # On a machine shared with other busy processes, one thread per process avoids PyTorch's
        # threads waiting on each other; bare and build always run with the same setting.
        torch.set_num_threads(args.torch_threads)
    result = machine()
    result["torch_threads"] = torch.get_num_threads()
    settings = kb.Settings.from_env()
    embedder = kb.load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
    t = time.perf_counter()
    docs = load_beir_corpus(args.beir)
    load_s = time.perf_counter() - t

    # The exact texts the build will embed, prepared outside every timing.
    texts = [embedding_text(d.title, c) for d in docs for c in chunk_document(d, settings.chunking, embedder.count_tokens)]
    embedder._model.encode(texts[:64], batch_size=settings.encode_batch_size)  # warm-up
    t = time.perf_counter()
    embedder._model.encode(texts, batch_size=settings.encode_batch_size, normalize_embeddings=True,
                           convert_to_numpy=True)
    bare_s = time.perf_counter() - t
    print(f"# bare encode of {len(texts)} chunk texts: {bare_s:.1f} s", file=sys.stderr, flush=True)

    counting = CountingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="kb-bench-indexing-") as tmp:
        index_dir = Path(tmp) / "index"
        full = kb.build_index(docs, index_dir, counting, settings)
        assert full.encoded == len(texts) == full.chunks, (full.encoded, len(texts), full.chunks)

        counting.texts.clear()
        nochange = kb.build_index(docs, index_dir, counting, settings)
        t = time.perf_counter()
        kb.build_index(load_beir_corpus(args.beir), index_dir, counting, settings)
        nochange_with_load_s = time.perf_counter() - t
        nochange_encoded = len(counting.texts)

        forced = kb.build_index(docs, index_dir, counting, settings, force=True)

        # one document edited: a sentence added to the middle of the longest document
        target = max(docs, key=lambda d: len(d.text))
        middle = target.text.find(". ", len(target.text) // 2) + 1 or len(target.text)
        edited_text = target.text[:middle] + " This sentence was added for the benchmark." + target.text[middle:]
        edited = beir_document({"_id": target.id, "title": target.title, "text": edited_text},
                               args.beir.resolve().name)
        target_chunks = chunk_document(target, settings.chunking, embedder.count_tokens)
        edited_chunks = chunk_document(edited, settings.chunking, embedder.count_tokens)
        changed_texts = {embedding_text(edited.title, c) for c in edited_chunks} - {
            embedding_text(target.title, c) for c in target_chunks}
        counting.texts.clear()
        one = kb.build_index([edited if d.id == target.id else d for d in docs], index_dir, counting, settings)

    result.update({
        "corpus": {"folder": str(args.beir), "documents": len(docs), "chunks": len(texts), "load_s": round(load_s, 2)},
        "encode_batch_size": settings.encode_batch_size,
        "bare_encode": {"seconds": round(bare_s, 2), "chunks_per_s": round(len(texts) / bare_s, 1)},
        "full_build": {"seconds": round(full.seconds, 2), "chunks_per_s": round(full.chunks / full.seconds, 1),
                       "ratio_to_bare_throughput": round(bare_s / full.seconds, 3)},
        "nochange_rebuild": {"seconds": round(nochange.seconds, 3), "unchanged": nochange.unchanged,
                             "encoded": nochange_encoded, "pct_of_full_build": round(100 * nochange.seconds / full.seconds, 2),
                             "seconds_including_corpus_load": round(nochange_with_load_s, 2),
                             "pct_of_full_build_including_load": round(100 * nochange_with_load_s / full.seconds, 2)},
        "forced_rebuild": {"seconds": round(forced.seconds, 2), "encoded": forced.encoded, "reused": forced.reused},
        "one_document_changed": {
            "doc_id": target.id, "doc_chunks": len(edited_chunks), "chunks_whose_text_changed": len(changed_texts),
            "encoded": one.encoded, "encoded_texts_are_the_changed_ones": set(counting.texts) == changed_texts,
            "seconds": round(one.seconds, 2), "changed_documents": one.changed_documents,
        },
        "targets": {
            "full build >= 0.85 x bare throughput": bare_s / full.seconds >= 0.85,
            "no-change rebuild <= 5% of full build": nochange.seconds <= 0.05 * full.seconds,
            "one-document change re-encodes only its changed chunks": set(counting.texts) == changed_texts
            and one.encoded == len(changed_texts) <= len(edited_chunks),
        },
    })
    emit(result, args.out)


if __name__ == "__main__":
    main()
