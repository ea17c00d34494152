# The torchrun recipe of docs/scaling_out.rst (shown from line 3 on; tests compile it).
# Run: OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node=2 torchrun_train.py
from datetime import timedelta

import joblib
import numpy as np
import torch.distributed as dist
from sklearn.datasets import make_classification

from skopt_nn import MLPClassifier, distributed

# torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; "nccl" on CUDA
dist.init_process_group("gloo", timeout=timedelta(seconds=120))
rank, world = dist.get_rank(), dist.get_world_size()

# this rank's rows: here a slice of one generated set, in practice its own files
X, y = make_classification(20_000, 20, n_informative=10, n_classes=3, random_state=0)
rows = np.arange(rank, len(X), world)
clf = distributed.fit(MLPClassifier(hidden_layer_sizes=(64,), optimizer="lbfgs",
                                    max_iter=100, random_state=0), X[rows], y[rows])
if rank == 0:  # every rank has the same model
    print(f"training accuracy {clf.score(X, y):.3f}")
    joblib.dump(clf, "model.joblib")
dist.destroy_process_group()
