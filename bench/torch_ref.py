#!/usr/bin/python3
"""PyTorch CPU reference for bench/run.sh: the study's Fashion-MNIST models trained the way cnnlab trains them.

    /usr/bin/python3 bench/torch_ref.py MODEL [--epochs N] [--batch B] [--threads T] [--seed S]

MODEL: model_1 | model_2 | model_2_s2 (spec 4.1-4.3). Same command line and RESULT line as bench/keras_ref.py:
    RESULT framework=pytorch model=... threads=T batch=B epoch_s_median=... epoch_s_min=... test_acc=...

    /usr/bin/python3 bench/torch_ref.py vgg16 --mode forward|train --size S [--batch B] [--steps N] [--threads T]

vgg16 (bench/run.sh --vgg): images per second of torchvision's vgg16().features, its own initialisation, on
fixed pseudo-random inputs, the network of bench/vgg/{forward,train}_S.spec and bench/vgg_speed.c:
  * forward: the base alone on (B, 3, S, S), eval mode under torch.inference_mode();
  * train: as Model_10_VGG16_AL trains it: a trainable 1x1 convolution 1 -> 3 with ReLU (the study's gray->RGB
    Dense(3)) in front of the base, blocks 1-4 frozen (requires_grad False, so no weight gradients, but the
    input gradient flows through them to the 1x1 layer), block5 trainable, Flatten, Linear -> 10 classes,
    cross-entropy, Adam(lr 1e-5); one step = forward, backward, update.
One untimed warm-up step, then N timed steps; the median step gives images_s:
    RESULT framework=pytorch mode=M size=S batch=B steps=N images_s=... images_s_max=... images_cpu_s=... threads=T
(images_cpu_s: images per CPU second of the process, all threads; less moved by other processes)

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


def vgg16_net(mode, size):
    """(network, input shape) for the vgg16 benchmark; see the module's docstring."""
    from torchvision.models import vgg16  # only this benchmark needs torchvision

    base = vgg16(weights=None).features  # 13 convolutions and 5 max-pools; features[24] is block5_conv1
    if mode == "forward":
        return base.eval(), (3, size, size)
    for layer in list(base)[:24]:
        for p in layer.parameters():
            p.requires_grad_(False)
    side = size // 32
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), base, nn.Flatten(), nn.Linear(512 * side * side, 10))
    return net.train(), (1, size, size)


def vgg16_main(a):
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    net, shape = vgg16_net(a.mode, a.size)
    n = a.batch
    x = (torch.arange(n * shape[0] * shape[1] * shape[2], dtype=torch.int64) * 2654435761 % 1000).float() / 1000
    x = x.reshape(n, *shape)
    y = torch.arange(n) % 10
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=1e-5, eps=1e-7) if a.mode == "train" else None
    loss_fn = nn.CrossEntropyLoss()

    def step():
        if opt is None:
            with torch.inference_mode():
                net(x)
            return
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    print(f"pytorch {torch.__version__} threads={torch.get_num_threads()} vgg16 mode={a.mode} size={a.size} "
          f"batch={n} trainable_params={sum(p.numel() for p in trainable)}", flush=True)
    from steprate import rate_fields  # bench/steprate.py, beside this script

    print(f"RESULT framework=pytorch mode={a.mode} size={a.size} batch={n} steps={a.steps} "
          f"{rate_fields(step, n, a.steps)} threads={torch.get_num_threads()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(MODELS) + ["vgg16"])
    ap.add_argument("--mode", choices=("forward", "train"), default="forward", help="vgg16 only")
    ap.add_argument("--size", type=int, choices=(32, 56), default=32, help="vgg16 only: input height and width")
    ap.add_argument("--steps", type=int, default=3, help="vgg16 only: timed steps")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.model == "vgg16":
        return vgg16_main(a)

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
