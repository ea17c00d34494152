"""The pieces of ``python -m skopt_nn`` (:mod:`skopt_nn.__main__`).

* :mod:`.comparison` fits one estimator per optimizer and prints the table;
* :mod:`.figures` checks the figure's path and draws cost versus iterations;
* :mod:`.csv_data` reads and checks ``--csv`` data and builds its preprocessing.
"""


class InputError(Exception):
    """Input that cannot be used, found after parsing: one line on stderr, exit status 2."""
