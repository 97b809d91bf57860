"""What every part stands on: records, the settings tables, durable file writes, JSON Lines."""
from kb.core.records import Block, BlockBuilder, Chunk, Citation, Document, DocumentInfo, Hit
from kb.core.settings import (FUSIONS, MODES, PROJECT_ROOT, ChunkSettings, Settings, SettingsError, load,
                              markdown_table, option_help, setting)

__all__ = ["FUSIONS", "MODES", "PROJECT_ROOT", "Block", "BlockBuilder", "Chunk", "ChunkSettings", "Citation",
           "Document", "DocumentInfo", "Hit", "Settings", "SettingsError", "load", "markdown_table", "option_help",
           "setting"]
