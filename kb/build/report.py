"""What a build tells its caller: the one summary line, and the error it raises."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class BuildError(RuntimeError):
    """A build that cannot proceed (no documents, duplicate ids, another build running)."""


@dataclass
class BuildReport:
    build_id: str
    index_dir: Path
    documents: int
    chunks: int
    encoded: int  # chunks the primary (English) model encoded
    reused: int
    seconds: float
    unchanged: bool  # nothing to do: the live version already matches the corpus
    removed_documents: int = 0
    changed_documents: int = 0
    added_documents: int = 0
    # chunks encoded and reused per dense retriever, e.g. {"dense": 3, "multilingual": 3}
    encoded_by: dict[str, int] = field(default_factory=dict)
    reused_by: dict[str, int] = field(default_factory=dict)
    spans: int = 0  # sentences and talking points with stored vectors
    spans_encoded_by: dict[str, int] = field(default_factory=dict)

    def _encoders(self) -> str:
        if len(self.encoded_by) <= 1:
            spans = sum(self.spans_encoded_by.values())
            return f"{self.encoded} encoded, {self.reused} reused" + (f" ({spans} sentences encoded)" if spans else "")
        return "; ".join(f"{name} {self.encoded_by[name]} encoded / {self.reused_by.get(name, 0)} reused"
                         f" (+{self.spans_encoded_by.get(name, 0)} sentences)" for name in self.encoded_by)

    def summary(self) -> str:
        if self.unchanged:
            return (f"index {self.build_id} is up to date: {self.documents} documents, {self.chunks} chunks, "
                    f"{self._encoders()}, {self.seconds:.1f} s")
        return (f"built {self.build_id}: {self.documents} documents ({self.added_documents} added, "
                f"{self.changed_documents} changed, {self.removed_documents} removed), {self.chunks} chunks, "
                f"{self._encoders()}, {self.seconds:.1f} s")
