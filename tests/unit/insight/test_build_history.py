"""Build history: the kept versions, newest first, and what each build changed (from the manifests)."""
import json
from dataclasses import replace

import kb
from indexer.cli import main
from kb.insight import build_history
from tests.fixtures.fake_embedder import FakeEmbedder


def doc(doc_id, text):
    builder = kb.BlockBuilder()
    builder.heading(f"About {doc_id}", 2)
    builder.paragraph(text)
    return kb.Document(id=doc_id, title=doc_id, url=f"https://example.org/{doc_id}", source_type="agency",
                       text=builder.text, blocks=tuple(builder.blocks), as_of="2026-01-01")


def test_history_lists_kept_versions_with_their_changes(tmp_path, settings, capsys):
    fake = FakeEmbedder()
    a, b, c = doc("a", "Alpha text about registries."), doc("b", "Beta text about portals."), doc("c", "Gamma.")
    builds = [kb.build_index(docs, tmp_path, fake, settings) for docs in (
        [a], [a, b], [a, replace(b, text=b.text.replace("portals", "the portal sundhed.dk"), blocks=()), c], [a, c])]
    history = build_history(tmp_path)
    assert [e.build_id for e in history] == [r.build_id for r in builds[:0:-1]]  # three kept, newest first
    newest, middle, oldest = history
    assert newest.current and not middle.current
    assert (newest.changes.added, newest.changes.changed, newest.changes.removed) == ((), (), ("b",))
    assert (middle.changes.added, middle.changes.changed, middle.changes.removed) == (("c",), ("b",), ())
    assert oldest.changes is None and oldest.previous is None  # the build before it was pruned
    assert newest.encoded == {"dense": builds[3].encoded} and middle.encoded == {"dense": builds[2].encoded}
    assert middle.reused == {"dense": builds[2].reused} and newest.documents == 2

    assert main(["status", "--index", str(tmp_path), "--history"]) == 0
    out = capsys.readouterr().out
    assert out.index(newest.build_id) < out.index(middle.build_id) < out.index(oldest.build_id)
    assert f"* {newest.build_id}" in out and "removed 1: b" in out and "changes: not known" in out
    assert main(["status", "--index", str(tmp_path), "--history", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[1]["changes"] == {"added": ["c"], "changed": ["b"], "removed": []}


def test_no_index_is_a_readable_error(tmp_path, capsys):
    assert build_history(tmp_path) == []
    assert main(["status", "--index", str(tmp_path), "--history"]) == 2
    assert "No index versions" in capsys.readouterr().err
