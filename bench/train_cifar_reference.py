"""Train CIFAR-10 reference checkpoints of other families, to test quantization on trained weights.

The one trained checkpoint given (../shared/models/efficientvit_m0_cifar10.pt) is one family and
one variant. Quantization that keeps its accuracy may still break on another family's trained
weights, so this script trains timm-layout checkpoints of any zoo model on CIFAR-10, with the
same preprocessing as that checkpoint (bilinear 32→224, CIFAR mean/std; bench/quant.py's
`model_ready`). Only the 10,000 CIFAR-10 test images are at hand, so it trains on the 8,000 with
index % 5 != 0 and reports top-1 on the 2,000 held-out ones (index % 5 == 0), which
`bench/quant.py --split fifth` evaluates on. The figures are for measuring what quantization
costs, not for comparing with published CIFAR results.

Recipe: AdamW (lr 2e-3, weight decay 0.05), batch 128, 3 warm-up epochs then cosine, label
smoothing 0.1, random 32×32 crops of the 4-pixel reflect-padded image and horizontal flips,
bf16 autocast, as many epochs as fit `--seconds` (timed on ten steps). Weights are saved
rounded to float16 (state dict `NAME_cifar10.pt`, timm layout: compile with `--arch NAME
--num-classes 10`) and the held-out top-1 is that of the rounded weights.

Needs a CUDA GPU (an H200 trained EfficientViT-M2, SHViT-S1 and LowFormer-B0 in 150 s each,
41, 50 and 71 epochs):

    python bench/train_cifar_reference.py efficientvit_m2 shvit_s1 lowformer_b0 --out ckpt/
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F

from edgec.preprocess import read_images

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_test.npz"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
BATCH, LR, WARMUP_EPOCHS = 128, 2e-3, 3


class Data:
    """The CIFAR images on the GPU, split into training and held-out index sets."""

    def __init__(self, path: Path):
        images = np.stack(read_images(path))
        labels = np.load(path)["labels"]
        index = np.arange(len(labels))
        self.train, self.held_out = index[index % 5 != 0], index[index % 5 == 0]
        self.x = torch.tensor(images).permute(0, 3, 1, 2).contiguous().cuda()
        self.y = torch.tensor(labels).long().cuda()
        self.mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)

    def model_ready(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images / 255.0, size=(224, 224), mode="bilinear", align_corners=False)
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def augment(images: torch.Tensor) -> torch.Tensor:
    """Random 32×32 crops of the reflect-padded uint8 batch, half of them flipped (float)."""
    n = images.shape[0]
    padded = F.pad(images.float(), (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2, n), device=images.device)
    span = torch.arange(32, device=images.device)
    rows = (dy[:, None] + span).view(n, 1, 32, 1).expand(n, 3, 32, 40)
    crops = torch.gather(padded, 2, rows)
    cols = (dx[:, None] + span).view(n, 1, 1, 32).expand(n, 3, 32, 32)
    crops = torch.gather(crops, 3, cols)
    flip = torch.rand(n, device=images.device) < 0.5
    crops[flip] = crops[flip].flip(3)
    return crops


@torch.no_grad()
def top1(model: torch.nn.Module, data: Data, index: np.ndarray) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(index), 500):
        batch = torch.tensor(index[start : start + 500], device="cuda")
        predicted = model(data.model_ready(data.x[batch].float())).argmax(1)
        correct += int((predicted == data.y[batch]).sum())
    return correct / len(index)


def train(name: str, data: Data, seconds: float) -> tuple[dict, dict]:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = timm.create_model(name, num_classes=10).cuda().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.05)

    def step(batch: torch.Tensor, lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            x = data.model_ready(augment(data.x[batch]))
            loss = F.cross_entropy(model(x), data.y[batch], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return loss.detach().item()

    model.train()
    for i in range(20):  # ten warm-up steps, ten timed ones, at a tiny learning rate
        if i == 10:
            torch.cuda.synchronize()
            start = time.time()
        step(torch.tensor(rng.choice(data.train, BATCH), device="cuda"), 1e-4)
    torch.cuda.synchronize()
    per_epoch = (time.time() - start) / 10 * (len(data.train) // BATCH)
    epochs = max(5, min(300, int(seconds / per_epoch)))
    steps_per_epoch = len(data.train) // BATCH
    total, warm = epochs * steps_per_epoch, WARMUP_EPOCHS * steps_per_epoch
    print(f"{name}: {epochs} epochs ({per_epoch:.1f} s each)", file=sys.stderr)
    k = 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(data.train)
        for s in range(steps_per_epoch):
            cosine = 0.5 * (1 + math.cos(math.pi * (k - warm) / max(1, total - warm)))
            lr = LR * (k / warm if k < warm else cosine)
            loss = step(torch.tensor(order[s * BATCH : (s + 1) * BATCH], device="cuda"), lr)
            k += 1
        if epoch % 20 == 0 or epoch == epochs - 1:
            held = top1(model, data, data.held_out)
            print(f"  epoch {epoch}: loss {loss:.3f}, held-out top-1 {held:.4f}", file=sys.stderr)
    state = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(state)  # the held-out figure is that of the saved (rounded) weights
    record = {
        "epochs": epochs,
        "held_out_top1": top1(model, data, data.held_out),
        "train_images": len(data.train),
        "held_out_images": len(data.held_out),
    }
    return {key: value.cpu() for key, value in state.items()}, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="zoo / timm model names")
    parser.add_argument("--seconds", type=float, default=150, help="training time per model")
    parser.add_argument("--cifar", type=Path, default=CIFAR)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    args.out.mkdir(parents=True, exist_ok=True)
    data = Data(args.cifar)
    log = {}
    for name in args.models:
        state, log[name] = train(name, data, args.seconds)
        torch.save(state, args.out / f"{name}_cifar10.pt")
        print(f"{name}: {log[name]}", file=sys.stderr)
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
