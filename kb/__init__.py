"""Denmark Digital Health KB core library: documents, chunking, embedding, index versions, search.

The public surface is small on purpose; the indexer command line and the web app are thin shells
over it::

    import kb
    index = kb.Index.open("var/index")
    response = index.search("When was the CPR number introduced?", k=5)

Beyond these names, each concern has its own package with its own small surface: `kb.answer`
(does the index answer a query?), `kb.insight` (talking points, highlights, coverage, the query
log), `kb.eval` (retrieval quality). `kb` imports no web code and knows nothing about where
documents come from.
"""
from kb.build import BuildError, BuildReport, build_index
from kb.core import MODES, Block, BlockBuilder, ChunkSettings, Chunk, Citation, Document, Hit, Settings, SettingsError
from kb.index.layout import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexProblem
from kb.models import Encoder, ModelNotFoundError, load_embedder, load_encoders
from kb.search import Filters, Index, LiveIndex, SearchResponse

__all__ = [
    "MODES", "Block", "BlockBuilder", "BuildError", "BuildReport", "Chunk", "ChunkSettings", "Citation", "Document",
    "Encoder", "Filters", "Hit", "Index", "IndexCorruptError", "IndexMismatchError", "IndexNotFoundError",
    "IndexProblem", "LiveIndex", "ModelNotFoundError", "SearchResponse", "Settings", "SettingsError", "build_index",
    "load_embedder", "load_encoders",
]
