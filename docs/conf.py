"""Sphinx configuration for the skopt_nn documentation.

Build (from the repository root)::

    pip install -c constraints.txt -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The example gallery is built from ``examples/`` into ``docs/auto_examples``.
When the environment variable ``CI`` is set, the examples run in their fast
mode (``SKOPT_NN_EXAMPLES_FAST=1``) so that the build stays quick.
"""

import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # docs/_optimizer_plots.py and docs/_gallery_order.py

if os.environ.get("CI"):
    os.environ.setdefault("SKOPT_NN_EXAMPLES_FAST", "1")
# the examples and plots are small: one thread avoids oversubscribing the machine
os.environ.setdefault("OMP_NUM_THREADS", "1")

import skopt_nn  # noqa: E402

project = "skopt_nn"
author = "the skopt_nn developers"
copyright = "the skopt_nn developers"  # noqa: A001
release = skopt_nn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax's files are copied into the build (_static/mathjax): the equations
    # render without a network connection, also from a file:// page
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
root_doc = "index"
nitpicky = False
default_role = "literal"  # `x` renders as code, never as an unresolved reference

# -- autodoc / autosummary / numpydoc -------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc sections say it; signatures stay short
autodoc_default_options: dict = {}
autodoc_class_signature = "mixed"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()


def _objects_citing_the_lecture():
    """Full names of the API objects whose docstrings cite lecture equations ("Eq. N").

    Their pages (docs/_templates/autosummary) say where the numbers come from.
    """
    import importlib
    import inspect

    names = set()
    for modname in ("skopt_nn", "skopt_nn.optim", "skopt_nn.optim.line_search",
                    "skopt_nn.plotting"):
        module = importlib.import_module(modname)
        public = getattr(module, "__all__", None) or [
            n for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == modname]
        for name in public:
            obj = getattr(module, name)
            docs = [inspect.getdoc(obj) or ""]
            if inspect.isclass(obj):
                docs += [inspect.getdoc(v) or "" for k, v in vars(obj).items()
                         if not k.startswith("_") and callable(v)]
            if any("Eq." in doc for doc in docs):
                names.add(f"{modname}.{name}")
    return sorted(names)


autosummary_context = {"cites_lecture": _objects_citing_the_lecture()}

_SUBSTITUTION_LIKE = re.compile(r"(?<![\\\w`|])\|(?=\S)([^|`\n]*?\S)\|(?![\w`|])")


def _escape_bars(app, what, name, obj, options, lines):
    """Escape |x| in skopt_nn's docstrings, an absolute value rather than markup.

    reStructuredText reads ``|text|`` as a substitution reference; the library's
    docstrings use bars for absolute values (``|aᵀx − l|``).  Math blocks and
    roles are left alone.
    """
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    if not str(module).startswith("skopt_nn"):
        return
    in_math, math_indent = False, 0
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if in_math and stripped and indent <= math_indent:
            in_math = False
        if stripped.startswith(".. math::"):
            in_math, math_indent = True, indent
            continue
        if not in_math and ":math:" not in line:
            lines[i] = _SUBSTITUTION_LIKE.sub(r"\\|\1\\|", line)


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only the members that skopt_nn defines (not scikit-learn's mixins').

    The class pages list inherited members (``fit`` lives on a private base
    class); scikit-learn's own methods (``get_params``, ``score``, the metadata
    routing ``set_*_request``) are documented by scikit-learn, and their
    docstrings refer to labels of its documentation.
    """
    if what != "class" or skip:
        return skip
    defined_in = getattr(getattr(obj, "fget", obj), "__module__", None) or ""
    return None if defined_in.startswith("skopt_nn") else True


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars, priority=400)
    app.connect("autodoc-skip-member", _skip_foreign_members)


# -- matplotlib plot directive (the convergence plot of each optimizer page) --------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 96)]
plot_rcparams = {"figure.figsize": (9.0, 3.6), "figure.autolayout": True}
plot_apply_rcparams = True
plot_working_directory = str(DOCS)

# -- sphinx-gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "backreferences_dir": str(DOCS / "gen_modules" / "backreferences"),
    "doc_module": ("skopt_nn",),
    "reference_url": {"skopt_nn": None},
    "abort_on_example_error": True,
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_",),  # tables; not the reprs of matplotlib artists
    "show_memory": False,
    "plot_gallery": "True",
}

# -- HTML -----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skopt_nn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": [], "benchmarks": []}
html_show_sourcelink = False
html_static_path: list = []
