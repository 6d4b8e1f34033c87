"""The manual is true: README.md's and docs/'s Python examples print what they show, the
API reference covers every public name with a docstring, and nothing points outside the
repository. The convention for code blocks is in tests/_docs.py; shell blocks are run by
tests/test_docs_commands.py."""

import ast
import importlib
import re
import subprocess
import types

import pytest

from ._docs import ALL, ROOT, commands, console_steps, parse, run_python
from .helpers import load_script

PYTHON_PAGES = sorted({b.page for b in ALL if b.lang == "python"})


def test_blocks_use_known_languages_and_markers():
    for b in ALL:
        assert b.lang in ("", "text", "yaml", "python", "bash", "console"), f"{b.where}: ```{b.lang}"
        if b.mode == "skip":
            assert b.arg, f"{b.where}: a skipped block must say why"
        if b.mode == "slow":
            assert b.lang == "bash", f"{b.where}: only bash blocks can be slow"
        if b.lang in ("", "text", "yaml"):
            assert not b.mode and b.output is None, f"{b.where}: a text block is not run"
        if b.lang == "console":
            assert not b.mode, f"{b.where}: console blocks always run"
        if b.lang != "python":
            assert b.output is None, f"{b.where}: only python blocks have an Output block"


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files (session.edf, clicks.wav)
    run_python([b for b in parse(page) if b.lang == "python"])


# --- API reference -----------------------------------------------------------------------


def public_names(init) -> list[str]:
    """A package's public names: `__all__` if it has one, else its relative re-exports
    (`from .x import a as a`) and its own non-underscore definitions."""
    tree = ast.parse(init.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            names += [a.asname or a.name for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def public_api() -> list[tuple[str, object]]:
    """(path, object) of every public name of `nrtjax` and of each of its subpackages."""
    packages = [("nrtjax", ROOT / "nrtjax" / "__init__.py")] + [
        (f"nrtjax.{p.parent.name}", p) for p in sorted((ROOT / "nrtjax").glob("*/__init__.py"))]
    out = []
    for module, init in packages:
        mod = importlib.import_module(module)
        out += [(f"{module}.{n}", getattr(mod, n)) for n in public_names(init)]
    return out


def resolve(path: str):
    """The object at a dotted path, importing the longest module prefix (so that a module
    its package does not import is still reachable)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def api_entries() -> set[int]:
    """The objects that have a `::: PATH` entry on a docs/api page."""
    entries = set()
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        for path in re.findall(r"^::: ([\w.]+)$", page.read_text(), flags=re.M):
            entries.add(id(resolve(path)))
    return entries


def docstring(obj, path: str, package) -> str:
    """The docstring the API page shows for `obj`, read statically as mkdocstrings does (so
    that a constant's attribute docstring counts and a dataclass's generated one does not)."""
    if isinstance(obj, types.ModuleType):
        canonical = obj.__name__
    elif hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
        canonical = f"{obj.__module__}.{obj.__qualname__}"
    else:
        canonical = path
    target = package[canonical.removeprefix("nrtjax.")]
    target = target.final_target if target.is_alias else target
    return target.docstring.value.strip() if target.docstring else ""


def test_every_public_name_has_an_api_entry_and_a_docstring():
    griffe = pytest.importorskip("griffe", reason="the docs extra (mkdocstrings) is not installed")
    entries = api_entries()
    api = public_api()
    assert len(api) > 150  # the parser found the packages' names
    missing = [p for p, obj in api if id(obj) not in entries]
    assert not missing, ("public names without an entry in docs/api/*.md (add a `::: PATH` "
                         f"line to the subpackage's page): {missing}")
    package = griffe.load("nrtjax", search_paths=[str(ROOT)], resolve_aliases=True,
                          resolve_external=False)
    undocumented = [p for p, obj in api if not docstring(obj, p, package)]
    assert not undocumented, f"public names without a docstring: {undocumented}"


# --- static checks -----------------------------------------------------------------------


def test_nothing_points_outside_the_repository():
    """No tracked text file names a path above the repository (`../`) or the planning
    document the project was built from; this test names both only to look for them."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    bad = []
    for name in files:
        path = ROOT / name
        if name == "tests/test_docs.py" or not path.is_file() or path.suffix not in (
                ".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".json", ""):
            continue
        text = path.read_text(errors="ignore")
        if "../" in text or "DESIGN" + ".md" in text:
            bad.append(name)
    assert not bad, f"files pointing outside the repository: {bad}"


def test_readme_is_one_screen_and_lists_every_job():
    from experiments._cli import jobs

    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    listed = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.M))
    assert listed == set(jobs()), f"README's job table: missing {set(jobs()) - listed}"


def test_every_job_is_shown_on_a_docs_page():
    from experiments._cli import jobs

    shown = {args[1] for b in ALL if b.lang in ("bash", "console")
             for args in _commands(b) if args[0] == "nrtjax" and len(args) > 1}
    assert set(jobs()) <= shown, f"jobs no docs page shows how to run: {set(jobs()) - shown}"


def _commands(block):
    if block.lang == "console":
        return [args for args, _ in console_steps(block.body)]
    return commands(block.body)


def test_readme_links_resolve():
    """README.md's links into docs/ name existing pages and headings (mkdocs checks the
    links inside docs/; the README is not part of the site)."""
    toc = pytest.importorskip("markdown.extensions.toc", reason="the docs extra is not installed")
    slugify = toc.slugify

    text = (ROOT / "README.md").read_text()
    for target, anchor in re.findall(r"\]\((docs/[\w/.-]+\.md)(?:#([\w-]+))?\)", text):
        page = ROOT / target
        assert page.is_file(), f"README links to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
            slugs = {slugify(h.strip(), "-") for h in headings}
            assert anchor in slugs, f"README links to {target}#{anchor}, not a heading there"


def test_figures_are_small_made_by_the_script_and_used():
    """Every docs figure comes from scripts/make_figures.py, stays under 150 KB, and is shown
    on a page."""
    make_figures = load_script("make_figures")
    pages = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    figures = sorted((ROOT / "docs" / "figures").glob("*"))
    assert {f.stem for f in figures} == set(make_figures.FIGURES)
    for f in figures:
        assert f.stat().st_size < make_figures.MAX_BYTES, f"{f.name}: {f.stat().st_size} bytes"
        assert f"figures/{f.name}" in pages, f"{f.name} is on no page"
