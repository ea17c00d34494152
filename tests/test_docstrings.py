"""The API reference's summary lines are whole sentences, and the course is cited by name.

The documentation's autosummary tables show the first sentence of each
docstring, cut at the first period followed by a space: a summary line that
puts an equation reference in it ("... (lecture Eq. 4).") is cut to "... (lecture
Eq.".  These tests apply the same cut to every public class, function and
method of skopt_nn.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest
from _helpers import ROOT

#: the modules of the API reference (docs/api.rst)
MODULES = ["skopt_nn", "skopt_nn.optim", "skopt_nn.optim.line_search", "skopt_nn.plotting",
           "skopt_nn.datasets", "skopt_nn.model_selection"]
#: abbreviations that do not end a sentence (as Sphinx's autosummary treats them)
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "cf.", "vs.", "Dr.", "Mr.", "Mrs.", "Ms.")
_PERIOD = re.compile(r"\.\s+")


def summary_line(doc: str) -> str:
    """The first sentence of the first paragraph of ``doc``, as autosummary cuts it."""
    paragraph = []
    for line in inspect.cleandoc(doc).splitlines():
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    sentences = _PERIOD.split(" ".join(paragraph))
    summary = sentences[0]
    for i in range(1, len(sentences) + 1):
        summary = ". ".join(sentences[:i]).rstrip(".") + "."
        if not summary.endswith(_ABBREVIATIONS):
            break
    return summary


def public_objects():
    """(qualified name, object) of every public class, function and method."""
    seen = set()
    for modname in MODULES:
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None) or [
            n for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == modname]
        for name in names:
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            yield f"{modname}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in inspect.getmembers(obj):
                    defined_in = getattr(getattr(member, "fget", member), "__module__", "")
                    if not attr.startswith("_") and str(defined_in).startswith("skopt_nn") \
                            and (inspect.isfunction(member) or isinstance(member, property)):
                        yield f"{modname}.{name}.{attr}", member


PUBLIC = list(public_objects())
DOCUMENTED = [(name, obj) for name, obj in PUBLIC if inspect.getdoc(obj)]


def test_the_cut_matches_autosummary():
    assert summary_line("Adam (lecture Eq. 37-39).\n\nMore.") == "Adam (lecture Eq."
    assert summary_line("Step, e.g. a fixed one. More here.") == "Step, e.g. a fixed one."
    assert summary_line("\n    One line\n    over two.\n\n    Body.") == "One line over two."


def test_public_api_is_found():
    names = {name for name, _ in PUBLIC}
    assert {"skopt_nn.optim.Adam", "skopt_nn.optim.line_search.halving",
            "skopt_nn.MLPRegressor.fit", "skopt_nn.plotting.LossCurveDisplay",
            "skopt_nn.fit_many", "skopt_nn.model_selection.GridSearchCV.fit"} <= names


@pytest.mark.parametrize("name, obj", DOCUMENTED, ids=[name for name, _ in DOCUMENTED])
def test_summary_line_is_a_whole_sentence(name, obj):
    summary = summary_line(inspect.getdoc(obj))
    assert not re.search(r"\bEqs?\.$", summary), f"{name}: summary cut at {summary!r}"
    for opening, closing in ("()", "[]", "{}"):
        assert summary.count(opening) == summary.count(closing), \
            f"{name}: unbalanced {opening}{closing} in {summary!r}"


def test_the_course_is_cited_by_title_not_by_file_name():
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.rst"), *(ROOT / "docs").glob("*.py"),
             *(ROOT / "skopt_nn").rglob("*.py")]
    offenders = [str(p.relative_to(ROOT)) for p in texts
                 if re.search(r"backprop_sgd_adam|shared/lecture", p.read_text(encoding="utf-8"))]
    assert not offenders
    references = (ROOT / "docs" / "references.rst").read_text(encoding="utf-8")
    assert ".. [Lecture]" in references and "Backpropagation, SGD, and Adam" in references
