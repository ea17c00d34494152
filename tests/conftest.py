import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

# On 2 cores, torch's default thread pool with two pytest workers ran 5x slower.
torch.set_num_threads(1)
