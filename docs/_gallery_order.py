"""The order of the gallery (sphinx-gallery's ``within_subsection_order``).

From the lecture notebook to the theory: the examples a newcomer needs first.
"""

ORDER = [
    "plot_lecture_notebook.py",
    "plot_linear_losses.py",
    "plot_gridsearch_optimizers.py",
    "plot_batched_search.py",
    "plot_line_searches.py",
    "plot_sgd_schedules.py",
    "plot_convergence_rates.py",
]


class ExampleOrder:
    """Sort key: the position in ``ORDER``; examples not listed come last, by name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = str(filename).rsplit("/", 1)[-1]
        return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)

    def __repr__(self):
        return "ExampleOrder"
