"""The code blocks of README.md and docs/*.rst run as written.

The Python blocks of one file run in order in one namespace (a page may build
on what its earlier blocks defined), with matplotlib's Agg backend.  A block
fails the test if it raises or warns; a warning that a page shows on purpose
is listed in ``EXPECTED_WARNINGS`` and must then occur.

What counts as a Python block: in Markdown a fenced block marked ``python``; in
reStructuredText a ``code-block``/``code``/``sourcecode`` directive for Python,
a doctest (``>>>``) block, and a literal block introduced by ``::`` (Sphinx
highlights those as Python).  Doctest blocks are checked with doctest, output
included.  The gallery (``examples/``) and the optimizer pages' ``.. plot::``
code run in the documentation build and in tests/test_examples.py.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import time
import warnings
from pathlib import Path

import pytest
from _helpers import ROOT

#: the files whose examples the reader runs first: each must have Python blocks
MUST_HAVE_CODE = {"README.md", "docs/index.rst", "docs/getting_started.rst",
                  "docs/user_guide.rst"}
#: file -> [(warning category, message regex)] that its blocks show on purpose
EXPECTED_WARNINGS: dict[str, list[tuple[type[Warning], str]]] = {}
#: file -> the optional modules its blocks import (the test skips without them)
REQUIRES: dict[str, tuple[str, ...]] = {"docs/scaling_out.rst": ("distributed", "dask_ml")}
#: warnings of the environment, not of the snippets (as in pyproject's filterwarnings)
IGNORED_WARNINGS = [r"Sparse CSR tensor support is in beta state",
                    # a dask scheduler's HTTP port taken by another cluster on the machine
                    r"Port \d+ is already in use"]

_FENCE = re.compile(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_DIRECTIVE = re.compile(r"^(\s*)\.\. (code-block|code|sourcecode)::\s*(\S*)\s*$")
_DOCTEST_DIRECTIVE = re.compile(r"^(\s*)\.\. doctest::")
_PYTHON = {"python", "python3", "py", "pycon", "ipython", ""}


def _indented_block(lines: list[str], start: int, indent: int) -> tuple[int, str, int]:
    """The block of lines indented deeper than ``indent`` from ``start`` on.

    Skips a directive's options (``:caption: ...``) and the blank lines before
    the code; returns the code's first line number (1-based), its dedented text
    and the index of the first line after the block.
    """
    i = start
    while i < len(lines) and lines[i].strip().startswith(":") and \
            len(lines[i]) - len(lines[i].lstrip()) > indent:
        i += 1  # directive options
    while i < len(lines) and not lines[i].strip():
        i += 1
    first, body = i, []
    while i < len(lines) and (not lines[i].strip() or
                              len(lines[i]) - len(lines[i].lstrip()) > indent):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
    width = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return first + 1, "\n".join(l[width:] for l in body) + "\n", i


def extract_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of each Python block of a Markdown or reST file, in order."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return [(text[:m.start(2)].count("\n") + 1, m.group(2))
                for m in _FENCE.finditer(text) if m.group(1).lower() in {"python", "py"}]
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        directive = _DIRECTIVE.match(line) or _DOCTEST_DIRECTIVE.match(line)
        if directive or (line.rstrip().endswith("::") and not line.lstrip().startswith("..")):
            first, code, i = _indented_block(lines, i + 1, indent)
            language = directive.group(3).lower() if directive and directive.lastindex == 3 \
                else ""
            if language in _PYTHON and code.strip():
                blocks.append((first, code))
            continue
        if line.lstrip().startswith(">>>"):
            # a doctest block: from a >>> line to the next blank line
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            blocks.append((i + 1, "\n".join(l[indent:] for l in lines[i:end]) + "\n"))
            i = end
            continue
        i += 1
    return blocks


#: README.md and the pages of docs/ that have Python blocks
DOCUMENTS = [name for name in ["README.md", *(p.relative_to(ROOT).as_posix()
                                              for p in sorted((ROOT / "docs").glob("*.rst")))]
             if extract_blocks(ROOT / name)]


def _run_block(code: str, namespace: dict, name: str, line: int) -> None:
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, name, name, line - 1)
        runner = doctest.DocTestRunner(
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        runner.run(test, out=report.append, clear_globs=False)
        assert runner.failures == 0, "".join(report)
    else:
        # pad so that a traceback names the line of the file itself
        exec(compile("\n" * (line - 1) + code, name, "exec"), namespace)


def run_document(path: Path) -> list[warnings.WarningMessage]:
    """Run the Python blocks of ``path`` in one namespace; return the warnings shown."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace = {"__name__": "__snippet__"}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for pattern in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            for line, code in extract_blocks(path):
                if "sklearn.callback" in code and \
                        importlib.util.find_spec("sklearn.callback") is None:
                    continue  # the callbacks' block needs scikit-learn >= 1.9
                _run_block(code, namespace, str(path), line)
    finally:
        plt.close("all")
    return caught


def _check_warnings(caught, expected) -> None:
    def matches(w, cat, msg):
        return issubclass(w.category, cat) and re.search(msg, str(w.message))

    unexpected = [w for w in caught if not any(matches(w, c, m) for c, m in expected)]
    assert not unexpected, "the code blocks warn:\n" + "\n".join(
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in unexpected)
    for cat, msg in expected:
        assert any(matches(w, cat, msg) for w in caught), \
            f"expected a {cat.__name__} matching {msg!r}"


def test_the_first_pages_have_code():
    assert MUST_HAVE_CODE <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_code_blocks_run(document, monkeypatch, tmp_path):
    for module in REQUIRES.get(document, ()):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)  # whatever a snippet writes lands here
    start = time.perf_counter()
    caught = run_document(ROOT / document)
    elapsed = time.perf_counter() - start
    _check_warnings(caught, EXPECTED_WARNINGS.get(document, []))
    assert elapsed < 60, f"the code blocks of {document} took {elapsed:.0f} s; keep them short"


def test_a_warning_fails_unless_expected(tmp_path):
    page = tmp_path / "page.rst"
    page.write_text(".. code-block:: python\n\n   import warnings\n"
                    "   warnings.warn('deliberate', UserWarning)\n", encoding="utf-8")
    caught = run_document(page)
    with pytest.raises(AssertionError, match="deliberate"):
        _check_warnings(caught, [])
    _check_warnings(caught, [(UserWarning, "deliberate")])
    with pytest.raises(AssertionError, match="expected a RuntimeWarning"):
        _check_warnings(caught, [(UserWarning, "deliberate"), (RuntimeWarning, "other")])


def test_extract_blocks_finds_every_python_block(tmp_path):
    rst = tmp_path / "page.rst"
    rst.write_text(
        "Title\n=====\n\n"
        ".. code-block:: python\n   :caption: one\n\n   a = 1\n\n   b = a + 1\n\n"
        ".. code-block:: bash\n\n   echo no\n\n"
        "A literal block::\n\n    c = b * 2\n\n"
        ">>> c + 1\n5\n\n"
        ".. code:: python\n\n  d = c\n", encoding="utf-8")
    blocks = extract_blocks(rst)
    assert [code for _, code in blocks] == ["a = 1\n\nb = a + 1\n", "c = b * 2\n",
                                             ">>> c + 1\n5\n", "d = c\n"]
    assert [line for line, _ in blocks] == [7, 17, 19, 24]
    md = tmp_path / "README.md"
    md.write_text("x\n\n```bash\nls\n```\n\n```python\nz = 3\n```\n", encoding="utf-8")
    assert extract_blocks(md) == [(8, "z = 3\n")]


def test_a_failing_block_names_its_file_and_line(tmp_path):
    rst = tmp_path / "page.rst"
    rst.write_text(".. code-block:: python\n\n   x = 1\n   y = undefined_name\n",
                   encoding="utf-8")
    (line, code), = extract_blocks(rst)
    with pytest.raises(NameError) as info:
        _run_block(code, {}, str(rst), line)
    assert info.traceback[-1].lineno + 1 == 4
    with pytest.raises(AssertionError, match="Expected"):
        _run_block(">>> 1 + 1\n3\n", {}, "doc", 1)
