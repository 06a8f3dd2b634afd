"""Official EfficientViT-M / SHViT checkpoints trained with distillation (`head_dist.*`).

The official eval forward returns `(head(x) + head_dist(x)) / 2`; timm's modules have one
head, so the remap folds both into it. Found by tools/official_compare (the official code
built with `distillation=True`); these tests need no official code.
"""

import pytest
import torch
import torch.nn.functional as F
from support.official import official_state_dict

import edgec.models
from edgec.errors import ModelLoadError
from edgec.models.official_layout import fold_distillation_head


def random_head(prefix: str, features: int, classes: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        f"{prefix}.bn.weight": 1 + 0.2 * torch.randn(features, generator=g),
        f"{prefix}.bn.bias": 0.5 * torch.randn(features, generator=g),
        f"{prefix}.bn.running_mean": 0.5 * torch.randn(features, generator=g),
        f"{prefix}.bn.running_var": torch.rand(features, generator=g) + 0.5,
        f"{prefix}.bn.num_batches_tracked": torch.tensor(7),
        f"{prefix}.l.weight": torch.randn(classes, features, generator=g) / features**0.5,
        f"{prefix}.l.bias": 0.5 * torch.randn(classes, generator=g),
    }


def bn_linear(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    """The official BN_Linear in eval: BatchNorm1d (eps 1e-5), then Linear."""
    p = {k.removeprefix(f"{prefix}."): v for k, v in sd.items() if k.startswith(f"{prefix}.")}
    y = F.batch_norm(
        x, p["bn.running_mean"], p["bn.running_var"], p["bn.weight"], p["bn.bias"], False, 0, 1e-5
    )
    return F.linear(y, p["l.weight"], p["l.bias"])


def test_folded_head_is_the_average_of_both_heads():
    sd = {"other.weight": torch.randn(3)} | random_head("head", 24, 10, 0)
    sd |= random_head("head_dist", 24, 10, 1)
    x = torch.randn(5, 24)
    expected = (bn_linear(x, sd, "head") + bn_linear(x, sd, "head_dist")) / 2
    folded = fold_distillation_head(sd)
    assert not any(k.startswith("head_dist.") for k in folded)
    assert torch.equal(folded["other.weight"], sd["other.weight"])
    assert int(folded["head.bn.num_batches_tracked"]) == 7
    torch.testing.assert_close(bn_linear(x, folded, "head"), expected, atol=1e-5, rtol=1e-5)


def test_state_dict_without_distillation_head_is_unchanged():
    sd = random_head("head", 8, 4, 0)
    folded = fold_distillation_head(sd)
    assert folded.keys() == sd.keys()
    assert all(torch.equal(folded[k], sd[k]) for k in sd)


def test_incomplete_distillation_head_names_what_is_missing():
    sd = random_head("head", 8, 4, 0) | random_head("head_dist", 8, 4, 1)
    del sd["head_dist.bn.running_var"]
    with pytest.raises(ModelLoadError, match=r"head_dist\.bn\.running_var"):
        fold_distillation_head(sd)


@pytest.mark.parametrize("variant", ["efficientvit_m0", "shvit_s1"])
def test_distilled_official_checkpoint_loads_and_averages_both_heads(variant):
    sd = official_state_dict(variant)
    features, classes = sd["head.l.weight"].shape[1], sd["head.l.weight"].shape[0]
    dist = random_head("head_dist", features, classes, 3)
    as_head = {k.replace("head_dist.", "head.", 1): v for k, v in dist.items()}
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = edgec.models.create(variant, checkpoint=sd)(x)
        second = edgec.models.create(variant, checkpoint=sd | as_head)(x)
        both = edgec.models.create(variant, checkpoint=sd | dist)(x)
    assert (first - second).abs().max() > 0.1  # the two heads really differ
    torch.testing.assert_close(both, (first + second) / 2, atol=1e-4, rtol=1e-4)
