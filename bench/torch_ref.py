#!/usr/bin/python3
"""PyTorch CPU reference for bench/run.sh: the study's Fashion-MNIST models trained the way cnnlab trains them.

    /usr/bin/python3 bench/torch_ref.py MODEL [--epochs N] [--batch B] [--threads T] [--seed S]

MODEL: model_1 | model_2 | model_2_s2 (spec 4.1-4.3). Same command line and RESULT line as bench/keras_ref.py:
    RESULT framework=pytorch model=... threads=T batch=B epoch_s_median=... epoch_s_min=... test_acc=...

What makes the comparison fair, and why:
  * OMP_WAIT_POLICY=PASSIVE before torch is imported. Debian's torch runs its Linear layers on OpenBLAS
    (pthreads) next to GNU OpenMP; with OpenMP's default busy-waiting the two pools spin against each other on
    a small machine and an epoch takes 3-10x longer. Passive waiting is what a fair baseline needs.
  * torch.set_num_threads(T) (Debian's torch starts with 1 thread) and one inter-op thread, like
    keras_ref.py's intra-op T / inter-op 1 and cnnlab's --threads T.
  * Keras's initialisers (glorot-uniform kernels, zero biases), Adam(lr 0.005, eps 1e-7) and batch 512, so that
    the test accuracy column compares like with like. (torch.optim.Adam adds eps after the bias correction,
    Keras before it; at eps 1e-7 that does not change the time and barely the accuracy.)
  * Timed: the training pass of each epoch over the 60,000 shuffled images (118 steps, the last of 96),
    from the first batch to the last optimizer step; not the data loading, model building or evaluation.
Data: the Fashion-MNIST IDX files in $FMNIST_DIR (default /usr/share/datasets/fashion-mnist), scaled to [0, 1].
"""
import argparse
import gzip
import os
import statistics
import time

# Must precede the first import of torch: the OpenMP runtime reads it once, when it starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
LR = 0.005


def read_idx(name, header):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def fashion_mnist():
    """(x_train, y_train, x_test, y_test) as NCHW float32 in [0, 1] and int64 labels."""
    parts = []
    for split in ("train", "t10k"):
        x = read_idx(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
        y = read_idx(f"{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
        parts += [torch.from_numpy(x), torch.from_numpy(y)]
    return parts


def conv_stack(pads, flat):
    """Three 3x3 convolutions 32-64-64 (paddings as given) with pooling after the first two, then Dense 128."""
    return [nn.Conv2d(1, 32, 3, padding=pads[0]), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=pads[1]), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=pads[2]), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, 10)]


MODELS = {
    # spec 4.1: Flatten -> Dense 256 relu -> Dense 512 relu -> Dense 10 (337,674 parameters)
    "model_1": lambda: [nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                        nn.Linear(512, 10)],
    # spec 4.2: valid convolutions, 3x3x64 = 576 features (130,890 parameters)
    "model_2": lambda: conv_stack((0, 0, 0), 576),
    # spec 4.3: the first two convolutions same-padded, 5x5x64 = 1600 features (261,962 parameters)
    "model_2_s2": lambda: conv_stack((1, 1, 0), 1600),
}


def keras_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)  # Keras's glorot_uniform: the same fan-in + fan-out bound
            nn.init.zeros_(m.bias)


def train_epoch(model, opt, loss_fn, x, y, batch, gen):
    """One shuffled pass; returns its wall time in seconds."""
    model.train()
    order = torch.randperm(len(x), generator=gen)
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    hits = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return hits / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = fashion_mnist()
    model = nn.Sequential(*MODELS[a.model]())
    keras_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=LR, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(a.seed)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"pytorch {torch.__version__} threads={torch.get_num_threads()} "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} model={a.model} params={nparams} batch={a.batch}",
          flush=True)

    times, acc = [], float("nan")
    for e in range(a.epochs):
        times.append(train_epoch(model, opt, loss_fn, xtr, ytr, a.batch, gen))
        acc = accuracy(model, xte, yte)
        print(f"epoch {e}: train_s={times[-1]:.3f} test_acc={acc:.4f}", flush=True)
    print(f"RESULT framework=pytorch model={a.model} threads={torch.get_num_threads()} batch={a.batch} "
          f"epoch_s_median={statistics.median(times):.3f} epoch_s_min={min(times):.3f} test_acc={acc:.4f}")


if __name__ == "__main__":
    main()
