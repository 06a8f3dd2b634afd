"""Integer-only compilation (I-ViT / I-Segmenter): integer building blocks, the
`integer::int_only` pass and the checker that proves its result (docs/integer.md)."""

from edgec.passes.integer import int_only

__all__ = ["int_only"]
