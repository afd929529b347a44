#!/usr/bin/env python3
"""hpcstack demo: one slice of a hyper-parameter sweep, run as one Slurm task.

Trains a small neural network on the handwritten-digits data set (digits.txt beside this file, a
copy of the one scikit-learn ships: no download), for each hyper-parameter setting in this task's
slice, and prints one tab-separated RESULT line per setting. With a GPU and PyTorch it trains on
the GPU; otherwise numpy on the CPU (the compute image has numpy and nothing heavier). The
controller collects every task's lines into one table.

With a shared filesystem, run-demo.sh sets HPCSTACK_DEMO_DATA (the data set there) and
HPCSTACK_DEMO_RESULTS (a directory there): each task then writes its lines to its own file
task-<rank>.tsv in it instead of printing them, and the table is made from those files.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

# One Slurm task per CPU: one BLAS thread each, or threads of different tasks fight for cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
GRID = [(hidden, alpha) for hidden in (16, 32, 64, 128) for alpha in (1e-4, 1e-2)]
EPOCHS = 30


def my_slice() -> list[tuple[int, float]]:
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    size = int(os.environ.get("SLURM_NTASKS", "1"))
    return GRID[rank::size]


DIGITS = Path(os.environ.get("HPCSTACK_DEMO_DATA") or Path(__file__).with_name("digits.txt"))
BATCH = 200


def load_digits_split() -> tuple:  # type: ignore[type-arg]
    """The digits as floats in 0..1, split 75/25 per class with a fixed seed (same every run)."""
    import numpy as np

    rows = [line.split() for line in DIGITS.read_text().splitlines() if not line.startswith("#")]
    y = np.array([int(label) for label, _ in rows])
    x = np.array([[int(c, 17) for c in pixels] for _, pixels in rows], dtype=np.float64) / 16.0
    rng = np.random.default_rng(0)
    test = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(y == digit))
        test[members[: len(members) // 4]] = True
    return x[~test], x[test], y[~test], y[test]


def gpu_device() -> tuple[object, str] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda:0"), torch.cuda.get_device_name(0)


def train_cpu(data: tuple, hidden: int, alpha: float) -> tuple[float, float]:  # type: ignore[type-arg]
    """One hidden ReLU layer, softmax, Adam (lr 1e-3) with L2 weight `alpha`: what scikit-learn's
    MLPClassifier does by default, in numpy alone."""
    import numpy as np

    x_tr, x_te, y_tr, y_te = data
    rng = np.random.default_rng(0)
    sizes = [(64, hidden), (hidden, 10)]
    # Glorot-uniform weights, as scikit-learn initialises them.
    params = []
    for fan_in, fan_out in sizes:
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        params += [rng.uniform(-bound, bound, (fan_in, fan_out)), np.zeros(fan_out)]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    onehot = np.eye(10)[y_tr]
    step = 0
    start = time.perf_counter()
    for _ in range(EPOCHS):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            w1, b1, w2, b2 = params
            h = np.maximum(x_tr[idx] @ w1 + b1, 0.0)
            logits = h @ w2 + b2
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            d_out = (p - onehot[idx]) / len(idx)
            d_h = (d_out @ w2.T) * (h > 0)
            n = len(idx)
            grads = [
                x_tr[idx].T @ d_h + alpha * w1 / n,
                d_h.sum(axis=0),
                h.T @ d_out + alpha * w2 / n,
                d_out.sum(axis=0),
            ]
            step += 1
            for k, (g, (m, v)) in enumerate(zip(grads, moments, strict=True)):
                m[:] = 0.9 * m + 0.1 * g
                v[:] = 0.999 * v + 0.001 * g * g
                m_hat = m / (1 - 0.9**step)
                v_hat = v / (1 - 0.999**step)
                params[k] = params[k] - 1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8)
    elapsed = time.perf_counter() - start
    w1, b1, w2, b2 = params
    pred = (np.maximum(x_te @ w1 + b1, 0.0) @ w2 + b2).argmax(axis=1)
    return float((pred == y_te).mean()), elapsed / EPOCHS


def train_gpu(data: tuple, hidden: int, alpha: float, device: object) -> tuple[float, float]:  # type: ignore[type-arg]
    import torch

    x_tr, x_te, y_tr, y_te = data
    torch.manual_seed(0)
    xt = torch.tensor(x_tr, dtype=torch.float32, device=device)
    yt = torch.tensor(y_tr, dtype=torch.long, device=device)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=alpha)
    loss_fn = torch.nn.CrossEntropyLoss()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(EPOCHS):
        for i in range(0, len(xt), 200):
            opt.zero_grad()
            loss_fn(model(xt[i : i + 200]), yt[i : i + 200]).backward()
            opt.step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        pred = model(torch.tensor(x_te, dtype=torch.float32, device=device)).argmax(1).cpu()
    return float((pred.numpy() == y_te).mean()), elapsed / EPOCHS


def main() -> None:
    data = load_digits_split()
    gpu = gpu_device()
    node = os.environ.get("SLURMD_NODENAME", socket.gethostname())
    job = os.environ.get("SLURM_JOB_ID", "-")
    task = os.environ.get("SLURM_PROCID", "0")
    lines = []
    for hidden, alpha in my_slice():
        if gpu is not None:
            acc, per_epoch = train_gpu(data, hidden, alpha, gpu[0])
            device = f"gpu:{gpu[1]}"
        else:
            acc, per_epoch = train_cpu(data, hidden, alpha)
            device = "cpu"
        fields = [
            job,
            task,
            node,
            device,
            str(hidden),
            f"{alpha:g}",
            f"{acc:.4f}",
            f"{per_epoch * 1000:.1f}",
        ]
        lines.append("RESULT\t" + "\t".join(fields))
        if not os.environ.get("HPCSTACK_DEMO_RESULTS"):
            print(lines[-1], flush=True)
    results = os.environ.get("HPCSTACK_DEMO_RESULTS")
    if results:  # written whole, then renamed: the reader never sees half a file
        final = Path(results) / f"task-{task}.tsv"
        partial = final.with_suffix(".part")
        partial.write_text("".join(f"{line}\n" for line in lines))
        partial.rename(final)


if __name__ == "__main__":
    main()
