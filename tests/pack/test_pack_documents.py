"""Repository documents: one per language family in dependency order, path comments in the
file's own syntax, one document per file for the other languages."""

from __future__ import annotations

from pack_fixtures import package_files

from codemill.pack.documents import BuildStats, file_part, language_of, path_comment, repo_documents
from codemill.records import FileRecord


def test_path_comment_uses_the_files_comment_syntax():
    assert path_comment("pkg/a.py", "python") == "# pkg/a.py\n"
    assert path_comment("src/x.ts", "typescript") == "// src/x.ts\n"
    assert path_comment("lib/u.h", "c") == "// lib/u.h\n"
    assert path_comment("docs/i.md", "markdown") == "<!-- docs/i.md -->\n"
    assert path_comment("db/q.sql", "sql") == "-- db/q.sql\n"
    assert path_comment("s/site.css", "css") == "/* s/site.css */\n"
    assert path_comment("data.json", "json") == ""  # JSON cannot hold a comment


def test_language_labels_are_normalized_with_the_extension_as_fallback():
    assert language_of("Python", "a.py") == "python"
    assert language_of("C++", "a.cc") == "cpp"
    assert language_of("C#", "a.cs") == "csharp"
    assert language_of("", "x/y.go") == "go"
    assert language_of("unknown", "h.h") == "c"
    assert language_of("Jupyter Notebook", "n.ipynb") == "jupyter notebook"


def test_file_part_starts_with_the_path_and_ends_a_line():
    assert file_part("a.py", "python", "x = 1") == "# a.py\nx = 1\n"
    assert file_part("a.py", "python", "x = 1\n") == "# a.py\nx = 1\n"


def test_a_real_package_becomes_one_ordered_document_plus_single_file_documents():
    records = package_files("requests")
    records.append(
        FileRecord(
            repo="pypi/requests", path="README.md", content="# requests\n\nHTTP for Humans.\n", language="Markdown"
        )
    )
    stats = BuildStats()
    docs = repo_documents("pypi/requests", records, seed=0, stats=stats)
    python = [d for d in docs if d.language == "python"]
    others = [d for d in docs if d.language != "python"]
    assert len(python) == 1 and len(others) == 1
    doc = python[0]
    assert sorted(doc.paths) == sorted(r.path for r in records if r.path.endswith(".py"))
    # dependencies first: api.py imports sessions and models; __init__ imports api
    pos = {p: i for i, p in enumerate(doc.paths)}
    assert pos["requests/sessions.py"] < pos["requests/api.py"] < pos["requests/__init__.py"]
    assert pos["requests/models.py"] < pos["requests/api.py"]
    contents = {r.path: r.content for r in records}
    for path, part in zip(doc.paths, doc.parts):
        assert part == f"# {path}\n" + contents[path] + ("" if contents[path].endswith("\n") else "\n")
    assert others[0].text == "<!-- README.md -->\n# requests\n\nHTTP for Humans.\n"
    assert stats.files == len(records) and stats.repo_documents == 1 and stats.file_documents == 1
    assert stats.dependency_edges > 20


def test_the_same_seed_gives_the_same_documents():
    records = package_files("urllib3")
    a = repo_documents("pypi/urllib3", records, seed=7, stats=BuildStats())
    b = repo_documents("pypi/urllib3", list(reversed(records)), seed=7, stats=BuildStats())
    assert [d.text for d in a] == [d.text for d in b]
