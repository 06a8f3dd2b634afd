"""Make a freshly initialised model behave like a trained one, deterministically.

timm initialises many tensors to constants: BatchNorm running statistics (0 mean, 1 var),
residual-branch BN gammas (0, so whole branches output zero), norm biases, attention bias
tables. A graph exported from such a model has all-zero weights and zero adds that passes
and runtimes can delete, which flatters every latency figure. Built-in models therefore get
random, seeded norm statistics, norm affine parameters and attention biases on top of timm's
initialisation.
"""

from __future__ import annotations

import torch

_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)


@torch.no_grad()
def randomise_constant_inits(module: torch.nn.Module, seed: int) -> None:
    """Replace constant-initialised norm and attention-bias tensors by seeded random ones."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
        if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    for name, p in module.named_parameters():
        if name.rpartition(".")[2] in {"attention_biases", "attention_bias"}:
            p.copy_(torch.randn(p.shape, generator=gen))
