"""The timed layout choices are kept per machine, so that fits repeat across runs."""

import json
import os

import numpy as np
import pytest
import torch

import skopt_nn
from skopt_nn import _layout_store, _mlp_layout
from skopt_nn._population import _network


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh store in ``tmp_path``; ``new_process()`` forgets what this process
    holds, as a later run starts with only the file."""
    monkeypatch.setenv("SKOPT_NN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_layout_store, "_TABLES", {})
    monkeypatch.setattr(_network, "_LAYOUTS", {})

    class Store:
        path = tmp_path

        @staticmethod
        def new_process():
            _layout_store._TABLES.clear()
            _network._LAYOUTS.clear()

        @staticmethod
        def entries():
            (file,) = [f for f in os.listdir(tmp_path) if f.endswith(".json")]
            with open(tmp_path / file, encoding="utf-8") as f:
                return json.load(f)

    return Store


def test_a_choice_is_made_once_and_read_back_by_a_later_process(store):
    made = []
    assert _layout_store.choice(("k", 1), lambda: made.append(1) or 2) == 2
    assert _layout_store.choice(("k", 1), lambda: made.append(1) or 3) == 2
    assert made == [1]
    assert store.entries() == {"('k', 1)": 2}
    store.new_process()
    assert _layout_store.choice(("k", 1), lambda: pytest.fail("timed again")) == 2
    assert _layout_store.choice(("k", 2), lambda: 5) == 5  # another key: decided anew
    assert store.entries() == {"('k', 1)": 2, "('k', 2)": 5}


def test_a_value_stored_by_another_process_first_wins(store):
    assert _layout_store.choice(("k",), lambda: 1) == 1
    store.new_process()
    path = _layout_store.store_path()
    with open(path, "w", encoding="utf-8") as f:  # another process decided meanwhile
        json.dump({"('j',)": 7}, f)
    assert _layout_store._write(path, "('j',)", 8) == 7
    assert _layout_store.choice(("j",), lambda: 8) == 7


def test_an_unusable_store_keeps_choices_per_process(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(_layout_store, "_TABLES", {})
    monkeypatch.setenv("SKOPT_NN_CACHE_DIR", str(blocker))
    assert _layout_store.choice(("k",), lambda: 4) == 4  # no error
    assert _layout_store.choice(("k",), lambda: 5) == 4
    monkeypatch.setenv("SKOPT_NN_CACHE_DIR", "")  # switched off
    assert _layout_store.store_path() is None
    assert _layout_store.choice(("k",), lambda: 6) == 6


def test_a_corrupt_store_is_timed_again_and_rewritten(store):
    path = _layout_store.store_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{not json")
    assert _layout_store.choice(("k",), lambda: 3) == 3
    assert store.entries() == {"('k',)": 3}


def _timings(monkeypatch, module, favour_column: bool):
    """``best_time`` of ``module`` makes every column-major (or transposed) form the
    clear winner, or the clear loser."""
    calls = iter(range(10**6))

    def fake(fn, reps=5):
        fn()
        second = next(calls) % 3 == 1  # prefer_transposed times row, column, row
        return (0.1 if second == favour_column else 1.0)

    monkeypatch.setattr(module, "best_time", fake)


def test_the_single_fits_layout_is_kept_across_runs(store, monkeypatch):
    monkeypatch.setattr(_mlp_layout, "_TIME_MACS", 0)
    x = torch.zeros(3)
    _timings(monkeypatch, _mlp_layout, favour_column=True)
    assert _mlp_layout.prefer_transposed(40, 33, 5, True, False, True, x) is True
    store.new_process()
    _timings(monkeypatch, _mlp_layout, favour_column=False)  # this run would time the other
    assert _mlp_layout.prefer_transposed(40, 33, 5, True, False, True, x) is True
    assert _mlp_layout.prefer_transposed(40, 33, 6, True, False, True, x) is False
    # small products keep the row-major layout untimed, and store nothing
    monkeypatch.setattr(_mlp_layout, "_TIME_MACS", 1 << 16)
    assert _mlp_layout.prefer_transposed(16, 21, 20, False, False, False, x) is False
    assert len(store.entries()) == 2


def test_the_populations_forms_are_kept_across_runs(store, monkeypatch):
    A, B = torch.zeros(3, 50, 40), torch.zeros(3, 40, 30)
    monkeypatch.setattr(_network, "_timed_form", lambda A, B: _network.NUMPY)
    assert _network._fastest(A, B) == _network.NUMPY
    store.new_process()
    monkeypatch.setattr(_network, "_timed_form", lambda A, B: _network.TRANSPOSED)
    assert _network._fastest(A, B) == _network.NUMPY
    assert _network._fastest(A.transpose(1, 2).contiguous().transpose(1, 2), B) == \
        _network.TRANSPOSED  # another layout of A: another choice


def _fit(X, y):
    return skopt_nn.MLPClassifier(hidden_layer_sizes=(24,), batch_size=64, max_iter=3,
                                  tol=None, random_state=0).fit(X, y)


def test_a_fit_repeats_when_another_run_would_time_other_layouts(store, monkeypatch):
    """The layouts decide the rounding: with the store a second run, whose timings
    favour the other layouts, gives the same weights; without it, other weights."""
    monkeypatch.setenv("SKOPT_NN_COMPILED", "0")  # the torch objective, which times
    monkeypatch.setattr(_mlp_layout, "_TIME_MACS", 0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    _timings(monkeypatch, _mlp_layout, favour_column=True)
    first = _fit(X, y)
    store.new_process()
    _timings(monkeypatch, _mlp_layout, favour_column=False)
    again = _fit(X, y)
    for a, b in zip(first.coefs_ + first.intercepts_, again.coefs_ + again.intercepts_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv("SKOPT_NN_CACHE_DIR", "")  # no store: this run's own timings
    other = _fit(X, y)
    assert any(not np.array_equal(a, b) for a, b in zip(first.coefs_, other.coefs_,
                                                        strict=True))
