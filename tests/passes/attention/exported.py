"""Real attention blocks of the zoo families, exported by torch.onnx (dynamo, opset 18 unless
asked otherwise) and run through the `cleanup` pipeline — what the attention passes see in a
compile."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import torch

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.models.seeded_init import randomise_constant_inits
from edgec.pass_manager import run_passes
from edgec.pipelines import pipeline


class Exported:
    """A cleaned-up exported graph with its input and PyTorch's output for that input."""

    def __init__(
        self, module: torch.nn.Module, shape: tuple[int, ...], seed: int = 0, opset: int = 18
    ):
        module.eval()  # (EfficientViT's attention overrides train() and returns None)
        randomise_constant_inits(module, seed)  # no zero BN/bias table hides a term
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(shape, generator=g)
        with torch.no_grad():
            self.expected = module(x).numpy()
            program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset)
        self.model = program.model
        self.x = x.numpy()
        run_passes(self.model, pipeline("cleanup"))

    def clone(self) -> ir.Model:
        return ir.serde.deserialize_model(ir.serde.serialize_model(self.model))

    def feeds(self) -> dict[str, np.ndarray]:
        return {self.model.graph.inputs[0].name: self.x}


class Functional(torch.nn.Module):
    """A functional forward `fn(x, state_dict, prefix)` (tests/support/official.py) as a module."""

    def __init__(self, fn, state_dict: dict[str, torch.Tensor], prefix: str):
        super().__init__()
        self.fn, self.sd, self.prefix = fn, state_dict, prefix

    def forward(self, x):
        return self.fn(x, self.sd, self.prefix)
