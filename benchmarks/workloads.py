"""The benchmark workloads and every implementation timed on them.

Three fixed workloads, each with its reference systems (the *anchors*) and our
estimators:

* ``w1``: the lecture notebook.  100 points x ~ U(0, 10), y = sin(x) + U(0, 0.8),
  a test set drawn the same way; 1-10-20-10-1 ReLU network, squared error, Adam
  lr 0.02, batch 16, shuffled, 1000 epochs, no penalty.  Metric: test MSE.
* ``w2``: ``make_classification(250_000 x 100, 20 informative, 10 redundant)``
  as float32, 200k train / 50k test, linear logistic models.  Metric: test accuracy.
* ``w3``: ``make_classification(60_000 x 64, 10 classes, 40 informative,
  10 redundant)`` as float32, 50k train / 10k test, MLP 64-256-256-10 ReLU,
  Adam lr 1e-3, batch 256, 10 epochs, no penalty.  Metric: test accuracy.

An :class:`Impl` builds a ``train`` closure from the data; ``train()`` fits one
model from scratch (model and optimizer construction included, as in a real
``fit``) and returns ``(predict, info)``.  Only ``train()`` is timed; the
prediction on the test set happens afterwards.  Nothing here imports torch,
scikit-learn or skopt_nn at module level, so a worker process loads only what its
implementation needs (an sklearn anchor never pays for importing torch).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------- settings
W1_N, W1_HIDDEN, W1_BATCH, W1_EPOCHS, W1_LR = 100, (10, 20, 10), 16, 1000, 0.02

W2_TRAIN, W2_TEST, W2_FEATURES = 200_000, 50_000, 100
W2_MAKE = {"n_features": 100, "n_informative": 20, "n_redundant": 10}
W2_BATCH, W2_EPOCHS, W2_GD_ITERS, W2_ALPHA = 256, 5, 50, 1e-4

W3_TRAIN, W3_TEST, W3_FEATURES, W3_CLASSES = 50_000, 10_000, 64, 10
W3_MAKE = {"n_features": 64, "n_informative": 40, "n_redundant": 10, "n_classes": 10}
W3_HIDDEN, W3_BATCH, W3_EPOCHS, W3_LR = (256, 256), 256, 10, 1e-3


@dataclass(frozen=True)
class Options:
    """What a worker passes to an implementation's builder."""

    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True)
class Impl:
    """One implementation of a workload.

    ``ref`` names the anchor its time, memory and metric are compared with;
    ``requires`` lists ``"module"`` or ``"module:attribute"`` that must import, or
    the row is reported as unavailable instead of run.
    """

    name: str
    ref: str
    build: Callable
    anchor: bool = False
    uses_torch: bool = True
    requires: tuple = ()
    desc: str = ""


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    load: Callable
    metric: str  # "test_mse" or "test_accuracy"
    repeats: int  # default timed runs per worker
    impls: tuple

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "test_mse"

    def impl(self, name: str) -> Impl:
        for impl in self.impls:
            if impl.name == name:
                return impl
        raise KeyError(f"{self.key} has no implementation {name!r}")

    def score(self, pred, y) -> float:
        pred = np.asarray(pred)
        if self.metric == "test_mse":
            diff = pred.astype(np.float64).reshape(-1) - np.asarray(y, np.float64).reshape(-1)
            return float(np.mean(diff**2))
        return float(np.mean(pred.reshape(-1) == np.asarray(y).reshape(-1)))


# --------------------------------------------------------------------------- data
def sine_data(seed: int):
    """The notebook's data: one RandomState, drawn as x_tr, y_tr, x_te, y_te."""
    rng = np.random.RandomState(seed)
    x_tr = (rng.rand(W1_N) * 10).astype(np.float32)
    y_tr = (np.sin(x_tr) + rng.rand(W1_N) * 0.8).astype(np.float32)
    x_te = (rng.rand(W1_N) * 10).astype(np.float32)
    y_te = (np.sin(x_te) + rng.rand(W1_N) * 0.8).astype(np.float32)
    return x_tr[:, None], y_tr[:, None], x_te[:, None], y_te[:, None]


def _cache_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), "skopt_nn_bench_data")
    os.makedirs(path, exist_ok=True)
    return path


def cached_classification(tag: str, n_train: int, n_test: int, seed: int, **make_kw):
    """``make_classification(n_train + n_test, random_state=seed, **make_kw)``.

    X is stored as float32 and y as int64 in ``.npy`` files under the temp
    directory, so workers load identical data without generating it (generation
    is neither timed nor part of a worker's peak memory).  The first ``n_train``
    rows train, the rest test.
    """
    stem = os.path.join(_cache_dir(), f"{tag}_{n_train}_{n_test}_{seed}")
    fx, fy = stem + "_X.npy", stem + "_y.npy"
    if not (os.path.exists(fx) and os.path.exists(fy)):
        from sklearn.datasets import make_classification

        X, y = make_classification(n_samples=n_train + n_test, random_state=seed, **make_kw)
        for path, arr in ((fx, X.astype(np.float32)), (fy, y.astype(np.int64))):
            tmp = f"{path}.{os.getpid()}.tmp.npy"
            np.save(tmp, arr)
            os.replace(tmp, path)
    X, y = np.load(fx), np.load(fy)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def linear_data(seed: int):
    return cached_classification("w2", W2_TRAIN, W2_TEST, seed, **W2_MAKE)


def mlp_data(seed: int):
    return cached_classification("w3", W3_TRAIN, W3_TEST, seed, **W3_MAKE)


# --------------------------------------------------------------------------- helpers
def _fit_quietly(model, X, y):
    """``model.fit(X, y)`` with convergence warnings silenced (the epoch counts are fixed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _torch_predict(net, device, classify: bool):
    import torch

    def predict(X):
        net.eval()
        with torch.no_grad():
            out = net(torch.as_tensor(X, device=device))
        return (out.argmax(1) if classify else out).cpu().numpy()

    return predict


def _sine_net_class():
    """The notebook's module: fc1..fc4 with ReLU between them."""
    import torch.nn.functional as F
    from torch import nn

    class SineNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(1, 10)
            self.fc2 = nn.Linear(10, 20)
            self.fc3 = nn.Linear(20, 10)
            self.fc4 = nn.Linear(10, 1)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            h = F.relu(self.fc2(h))
            h = F.relu(self.fc3(h))
            return self.fc4(h)

    return SineNet


def _mlp_mid_net():
    from torch import nn

    (h1, h2) = W3_HIDDEN
    return nn.Sequential(
        nn.Linear(W3_FEATURES, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
        nn.Linear(h2, W3_CLASSES),
    )


def _info(model, **extra):
    info = {"n_iter": int(np.max(model.n_iter_))} if hasattr(model, "n_iter_") else {}
    info.update(extra)
    return info


# --------------------------------------------------------------------------- W1 impls
def w1_sklearn_mlp(data, opt: Options):
    from sklearn.neural_network import MLPRegressor

    X, y, _, _ = data

    def train():
        model = MLPRegressor(
            hidden_layer_sizes=W1_HIDDEN, activation="relu", solver="adam",
            learning_rate_init=W1_LR, batch_size=W1_BATCH, max_iter=W1_EPOCHS, tol=0.0,
            n_iter_no_change=np.inf, alpha=0.0, shuffle=True, random_state=opt.seed,
        )
        _fit_quietly(model, X, y.ravel())
        return model.predict, _info(model)

    return train


def w1_torch_dataloader(data, opt: Options):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    X, y, _, _ = data
    device = torch.device(opt.device)
    SineNet = _sine_net_class()

    class Points(Dataset):
        def __init__(self, inputs, targets):
            self.inputs = torch.as_tensor(inputs)
            self.targets = torch.as_tensor(targets)

        def __len__(self):
            return len(self.inputs)

        def __getitem__(self, i):
            return self.inputs[i], self.targets[i]

    def train():
        torch.manual_seed(opt.seed)
        net = SineNet().to(device)
        loader = DataLoader(Points(X, y), batch_size=W1_BATCH, shuffle=True)
        criterion = nn.MSELoss()
        optimizer = torch.optim.Adam(net.parameters(), lr=W1_LR)
        net.train()
        for _ in range(W1_EPOCHS):
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad()
                loss = criterion(net(xb), yb)
                loss.backward()
                optimizer.step()
        _sync(device)
        return _torch_predict(net, device, classify=False), {}

    return train


def w1_skorch(data, opt: Options):
    import torch
    from skorch import NeuralNetRegressor

    X, y, _, _ = data
    SineNet = _sine_net_class()

    def train():
        torch.manual_seed(opt.seed)
        net = NeuralNetRegressor(
            SineNet, optimizer=torch.optim.Adam, lr=W1_LR, batch_size=W1_BATCH,
            max_epochs=W1_EPOCHS, train_split=None, iterator_train__shuffle=True, verbose=0,
            device=opt.device,
        )
        net.fit(X, y)
        return net.predict, {}

    return train


def w1_ours_mlp(data, opt: Options):
    from skopt_nn import MLPRegressor

    X, y, _, _ = data

    def train():
        model = MLPRegressor(
            hidden_layer_sizes=W1_HIDDEN, optimizer="adam", learning_rate_init=W1_LR,
            batch_size=W1_BATCH, max_iter=W1_EPOCHS, tol=None, alpha=0.0,
            random_state=opt.seed, device=opt.device,
        )
        _fit_quietly(model, X, y.ravel())
        return model.predict, _info(model)

    return train


# --------------------------------------------------------------------------- W2 impls
def w2_sklearn(kind: str):
    def build(data, opt: Options):
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        X, y, _, _ = data

        def train():
            if kind == "logreg":
                model = LogisticRegression(max_iter=1000)
            else:
                model = SGDClassifier(
                    loss="log_loss", max_iter=W2_EPOCHS, tol=None, learning_rate="constant",
                    eta0=0.01, random_state=opt.seed,
                )
            _fit_quietly(model, X, y)
            return model.predict, _info(model)

        return train

    return build


def w2_torch(full_batch: bool):
    """nn.Linear + BCEWithLogits + torch.optim.SGD (L2 1e-4 as weight decay).

    Mini-batch: batch 256, 5 epochs, lr 0.01, randperm batches.  Full batch: 50
    iterations, lr 0.1.
    """

    def build(data, opt: Options):
        import torch
        import torch.nn.functional as F

        X, y, _, _ = data
        device = torch.device(opt.device)
        lr = 0.1 if full_batch else 0.01

        def train():
            torch.manual_seed(opt.seed)
            Xt = torch.as_tensor(X, device=device)
            Yt = torch.as_tensor(y.astype(np.float32), device=device)
            net = torch.nn.Linear(W2_FEATURES, 1).to(device)
            optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=W2_ALPHA)
            if full_batch:
                for _ in range(W2_GD_ITERS):
                    optimizer.zero_grad(set_to_none=True)
                    F.binary_cross_entropy_with_logits(net(Xt).squeeze(1), Yt).backward()
                    optimizer.step()
            else:
                n = len(Xt)
                for _ in range(W2_EPOCHS):
                    perm = torch.randperm(n, device=device)
                    for start in range(0, n, W2_BATCH):
                        idx = perm[start:start + W2_BATCH]
                        optimizer.zero_grad(set_to_none=True)
                        out = net(Xt[idx]).squeeze(1)
                        F.binary_cross_entropy_with_logits(out, Yt[idx]).backward()
                        optimizer.step()
            _sync(device)

            def predict(Xq):
                with torch.no_grad():
                    f = net(torch.as_tensor(Xq, device=device)).squeeze(1)
                return (f > 0).long().cpu().numpy()

            return predict, {"lr": lr}

        return train

    return build


def w2_ours(optimizer: str, **params):
    def build(data, opt: Options):
        from skopt_nn import LinearClassifier

        X, y, _, _ = data

        def train():
            model = LinearClassifier(
                loss="logistic", optimizer=optimizer, random_state=opt.seed, device=opt.device,
                **params,
            )
            _fit_quietly(model, X, y)
            return model.predict, _info(model)

        return train

    return build


# --------------------------------------------------------------------------- W3 impls
def w3_sklearn_mlp(data, opt: Options):
    from sklearn.neural_network import MLPClassifier

    X, y, _, _ = data

    def train():
        model = MLPClassifier(
            hidden_layer_sizes=W3_HIDDEN, activation="relu", solver="adam",
            learning_rate_init=W3_LR, batch_size=W3_BATCH, max_iter=W3_EPOCHS, tol=0.0,
            n_iter_no_change=np.inf, alpha=0.0, shuffle=True, random_state=opt.seed,
        )
        _fit_quietly(model, X, y)
        return model.predict, _info(model)

    return train


def w3_torch_lean(fused: bool):
    def build(data, opt: Options):
        import torch
        import torch.nn.functional as F

        X, y, _, _ = data
        device = torch.device(opt.device)
        adam_kw = {"fused": True} if fused else {}

        def train():
            torch.manual_seed(opt.seed)
            Xt, Yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
            net = _mlp_mid_net().to(device)
            optimizer = torch.optim.Adam(net.parameters(), lr=W3_LR, **adam_kw)
            n = len(Xt)
            for _ in range(W3_EPOCHS):
                perm = torch.randperm(n, device=device)
                for start in range(0, n, W3_BATCH):
                    idx = perm[start:start + W3_BATCH]
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(net(Xt[idx]), Yt[idx]).backward()
                    optimizer.step()
            _sync(device)
            return _torch_predict(net, device, classify=True), {}

        return train

    return build


def w3_skorch(data, opt: Options):
    import torch
    from skorch import NeuralNetClassifier

    X, y, _, _ = data

    def train():
        torch.manual_seed(opt.seed)
        net = NeuralNetClassifier(
            _mlp_mid_net(), criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
            lr=W3_LR, batch_size=W3_BATCH, max_epochs=W3_EPOCHS, train_split=None,
            iterator_train__shuffle=True, verbose=0, device=opt.device,
        )
        net.fit(X, y)
        return net.predict, {}

    return train


def w3_ours_mlp(data, opt: Options):
    from skopt_nn import MLPClassifier

    X, y, _, _ = data

    def train():
        model = MLPClassifier(
            hidden_layer_sizes=W3_HIDDEN, optimizer="adam", learning_rate_init=W3_LR,
            batch_size=W3_BATCH, max_iter=W3_EPOCHS, tol=None, alpha=0.0,
            random_state=opt.seed, device=opt.device,
        )
        _fit_quietly(model, X, y)
        return model.predict, _info(model)

    return train


# --------------------------------------------------------------------------- registry
_SGD = "sklearn_sgd_log"
_LBFGS = "sklearn_logreg"

WORKLOADS = {
    "w1": Workload(
        "w1", "W1 notebook MLP 1-10-20-10-1, 100 points, Adam, 1000 epochs", sine_data,
        "test_mse", repeats=2,
        impls=(
            Impl("sklearn_mlp", "sklearn_mlp", w1_sklearn_mlp, anchor=True, uses_torch=False,
                 desc="sklearn MLPRegressor(adam, tol=0, n_iter_no_change=inf, alpha=0)"),
            Impl("torch_dataloader", "sklearn_mlp", w1_torch_dataloader, anchor=True,
                 desc="notebook loop: Dataset + DataLoader + nn.Module + torch.optim.Adam"),
            Impl("skorch", "sklearn_mlp", w1_skorch, anchor=True, requires=("skorch",),
                 desc="skorch NeuralNetRegressor(same module, Adam, train_split=None)"),
            Impl("ours_mlp", "sklearn_mlp", w1_ours_mlp, requires=("skopt_nn:MLPRegressor",),
                 desc="skopt_nn.MLPRegressor(optimizer='adam', tol=None)"),
        ),
    ),
    "w2": Workload(
        "w2", "W2 linear logistic, 200k x 100 float32", linear_data, "test_accuracy",
        repeats=2,
        impls=(
            Impl(_SGD, _SGD, w2_sklearn("sgd"), anchor=True, uses_torch=False,
                 desc="SGDClassifier(log_loss, 5 epochs, constant eta0=0.01, per sample)"),
            Impl(_LBFGS, _LBFGS, w2_sklearn("logreg"), anchor=True, uses_torch=False,
                 desc="LogisticRegression(lbfgs, max_iter=1000)"),
            Impl("torch_sgd_log", _SGD, w2_torch(full_batch=False), anchor=True,
                 desc="nn.Linear + torch.optim.SGD, batch 256, 5 epochs, lr 0.01, wd 1e-4"),
            Impl("torch_gd_log", _LBFGS, w2_torch(full_batch=True), anchor=True,
                 desc="nn.Linear + torch.optim.SGD full batch, 50 iterations, lr 0.1, wd 1e-4"),
            Impl("ours_sgd_log", _SGD,
                 w2_ours("sgd", batch_size=W2_BATCH, max_iter=W2_EPOCHS, tol=None),
                 desc="LinearClassifier(sgd, batch 256, 5 epochs, tol=None, lr 'auto' = 1/L)"),
            Impl("ours_sgd_log_lr0.01", _SGD,
                 w2_ours("sgd", batch_size=W2_BATCH, max_iter=W2_EPOCHS, tol=None,
                         learning_rate_init=0.01),
                 desc="the same with learning_rate_init=0.01"),
            Impl("ours_gd_log", _LBFGS, w2_ours("gd", max_iter=W2_GD_ITERS, tol=None),
                 desc="LinearClassifier(gd, 50 iterations, tol=None, lr 'auto' = 1/L)"),
            Impl("ours_lbfgs_log", _LBFGS, w2_ours("lbfgs"),
                 desc="LinearClassifier(lbfgs), defaults (max_iter=200, tol=1e-4)"),
        ),
    ),
    "w3": Workload(
        "w3", "W3 MLP 64-256-256-10, 50k x 64 float32, Adam, 10 epochs", mlp_data,
        "test_accuracy", repeats=1,
        impls=(
            Impl("sklearn_mlp", "sklearn_mlp", w3_sklearn_mlp, anchor=True, uses_torch=False,
                 desc="sklearn MLPClassifier(adam, tol=0, n_iter_no_change=inf, alpha=0)"),
            Impl("torch_lean", "sklearn_mlp", w3_torch_lean(fused=False), anchor=True,
                 desc="nn.Sequential + cross_entropy + torch.optim.Adam, randperm batches"),
            Impl("torch_lean_fused", "sklearn_mlp", w3_torch_lean(fused=True), anchor=True,
                 desc="the same with Adam(fused=True)"),
            Impl("skorch", "sklearn_mlp", w3_skorch, anchor=True, requires=("skorch",),
                 desc="skorch NeuralNetClassifier(same module, CrossEntropyLoss, Adam)"),
            Impl("ours_mlp", "sklearn_mlp", w3_ours_mlp, requires=("skopt_nn:MLPClassifier",),
                 desc="skopt_nn.MLPClassifier(optimizer='adam', tol=None)"),
        ),
    ),
}


def prepare_data(keys, seed: int) -> None:
    """Generate and cache the data of the given workloads (in the parent process)."""
    for key in keys:
        WORKLOADS[key].load(seed)
