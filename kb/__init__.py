"""Denmark Digital Health KB core library: documents, chunking, embedding, store, search.

The public surface is small on purpose; the indexer command line and the web app are thin shells
over it::

    import kb
    index = kb.Index.open("var/index")
    response = index.search("When was the CPR number introduced?", k=5)

`kb` imports no web code and knows nothing about where documents come from.
"""
from kb.build.pipeline import BuildError, BuildReport, build_index
from kb.core.settings import ChunkSettings, Settings
from kb.core.records import Block, BlockBuilder, Chunk, Citation, Document, Hit
from kb.models.sentence_transformer import Embedder, ModelNotFoundError, load_embedder
from kb.search.index import MODES, Filters, Index, SearchResponse
from kb.index.layout import IndexCorruptError, IndexError_ as IndexProblem, IndexMismatchError, IndexNotFoundError

__all__ = [
    "Block", "BlockBuilder", "BuildError", "BuildReport", "Chunk", "ChunkSettings", "Citation", "Document",
    "Embedder", "Filters", "Hit", "Index", "IndexCorruptError", "IndexMismatchError", "IndexNotFoundError",
    "IndexProblem", "MODES", "ModelNotFoundError", "SearchResponse", "Settings", "build_index",
    "load_embedder",
]
