#!/usr/bin/env python3
"""hpcstack demo: one slice of a hyper-parameter sweep, run as one Slurm task.

Trains a small neural network on the handwritten-digits data set that ships with Debian's
python3-sklearn (no download), for each hyper-parameter setting in this task's slice, and prints
one tab-separated RESULT line per setting. With a GPU and PyTorch it trains on the GPU; otherwise
scikit-learn on the CPU. The controller collects every task's lines into one table.
"""

from __future__ import annotations

import os
import socket
import time

GRID = [(hidden, alpha) for hidden in (16, 32, 64, 128) for alpha in (1e-4, 1e-2)]
EPOCHS = 30


def my_slice() -> list[tuple[int, float]]:
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    size = int(os.environ.get("SLURM_NTASKS", "1"))
    return GRID[rank::size]


def load_digits_split() -> tuple:  # type: ignore[type-arg]
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)


def gpu_device() -> tuple[object, str] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.device("cuda:0"), torch.cuda.get_device_name(0)


def train_cpu(data: tuple, hidden: int, alpha: float) -> tuple[float, float]:  # type: ignore[type-arg]
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x_tr, x_te, y_tr, y_te = data
    model = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=EPOCHS, random_state=0
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_tr, y_tr)
    elapsed = time.perf_counter() - start
    return float(model.score(x_te, y_te)), elapsed / EPOCHS


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
        print("RESULT\t" + "\t".join(fields), flush=True)


if __name__ == "__main__":
    main()
