"""Vision transformers for 32x32 inputs, optionally with a DeiT distillation token (the LIB-KD student).

Key layout of timm's ``VisionTransformer``/``VisionTransformerDistilled`` (DeiT): ``cls_token``,
``dist_token``, ``pos_embed`` (covering the class/distillation tokens), ``patch_embed.proj``,
``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, ``head``, ``head_dist``; pre-norm
blocks, LayerNorm eps 1e-6, GELU MLP. Written here in plain torch so loading a ViT never imports timm.

A distilled model in eval mode returns the mean of its class-token and distillation-token heads, as DeiT does
at test time; in training mode it returns both. Named sizes use patch 4 on 32x32 (64 patches) and DeiT's 64
channels per attention head: ``vit_cifar_tiny`` (depth 12, width 192, 3 heads) and ``vit_cifar_small``
(12, 384, 6), each also ``_distilled``. The parametric ``vit_cifar`` takes any depth, width, heads, MLP ratio,
patch and image size; detection reads all of them from a checkpoint's shapes except the head count, which
no weight reveals: pass ``--arch-option num_heads=N`` for a size that is not a named one.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.registry import register_architecture

SOURCE = "timm VisionTransformer / DeiT (facebookresearch/deit) key layout, patch 4 for CIFAR"


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class CifarViT(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        *,
        img_size: int = 32,
        patch_size: int = 4,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        distilled: bool = False,
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"image size {img_size} is not a multiple of patch size {patch_size}")
        self.distilled = distilled
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if distilled else None
        prefix = 2 if distilled else 1
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // patch_size) ** 2 + prefix, embed_dim))
        self.blocks = nn.Sequential(*(Block(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.head_dist = nn.Linear(embed_dim, num_classes) if distilled else None
        for token in (self.cls_token, self.dist_token, self.pos_embed):
            if token is not None:
                nn.init.trunc_normal_(token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed(x)
        tokens = [self.cls_token] + ([self.dist_token] if self.dist_token is not None else [])
        x = torch.cat([t.expand(x.shape[0], -1, -1) for t in tokens] + [x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        logits = self.head(x[:, 0])
        if self.head_dist is None:
            return logits
        logits_dist = self.head_dist(x[:, 1])
        return (logits, logits_dist) if self.training else (logits + logits_dist) / 2


def vit_kwargs_from_shapes(shapes: Mapping[str, tuple[int, ...]], given: Mapping[str, Any]) -> dict[str, Any] | None:
    """Builder arguments of a DeiT-layout checkpoint, or None when it is not one; the head count must be given."""
    needed = ("patch_embed.proj.weight", "pos_embed", "cls_token", "blocks.0.attn.qkv.weight")
    if not all(key in shapes for key in needed):
        return None
    embed_dim, _, patch_size, _ = shapes["patch_embed.proj.weight"]
    distilled = "dist_token" in shapes
    side = math.isqrt(shapes["pos_embed"][1] - (2 if distilled else 1))
    depth = 1 + max(int(m.group(1)) for key in shapes if (m := re.fullmatch(r"blocks\.(\d+)\.attn\.qkv\.weight", key)))
    inferred = {
        "img_size": side * patch_size,
        "patch_size": patch_size,
        "embed_dim": embed_dim,
        "depth": depth,
        "mlp_ratio": shapes.get("blocks.0.mlp.fc1.weight", (4 * embed_dim,))[0] / embed_dim,
        "qkv_bias": "blocks.0.attn.qkv.bias" in shapes,
        "distilled": distilled,
    }
    if "num_heads" not in given:
        size = f"depth {depth}, width {embed_dim}, patch {patch_size}" + (", distillation token" if distilled else "")
        raise BenchError(
            f"the checkpoint is a ViT ({size}) of no named size, and its number of attention heads cannot be "
            "read from the weights; pass --arch vit_cifar --arch-option num_heads=N (or num_heads in a sidecar), "
            "or --arch timm:NAME for a timm model"
        )
    return {**inferred, **given}


for _size, _dim, _heads in (("tiny", 192, 3), ("small", 384, 6)):
    for _distilled in (False, True):
        register_architecture(
            f"vit_cifar_{_size}" + ("_distilled" if _distilled else ""),
            family="vit",
            source=SOURCE,
            description=f"ViT-{_size[0].upper()}/4 on 32x32: depth 12, width {_dim}, {_heads} heads"
            + (", distillation token and head_dist" if _distilled else ""),
            classifier=("head", "head_dist") if _distilled else ("head",),
            attention_layer="blocks.-1.norm1",
        )(functools.partial(CifarViT, embed_dim=_dim, num_heads=_heads, distilled=_distilled))

register_architecture(
    "vit_cifar",
    family="vit",
    source=SOURCE,
    description="ViT of any depth/width/heads/patch (read from the checkpoint; num_heads must be given)",
    classifier=("head",),
    attention_layer="blocks.-1.norm1",
    infer_kwargs=vit_kwargs_from_shapes,
)(CifarViT)
