"""Attention maps of one model: Grad-CAM (captum ``LayerGradCam``) and, for ViTs, attention rollout.

Grad-CAM explains the logit of each image's true class (not the predicted one), so the maps of a student, its
teacher and its baseline answer the same question even where their predictions differ. The layer comes from
the architecture registry (``ArchitectureEntry.attention_layer``: the last convolutional stage of a CNN, the
last block's first LayerNorm of a ViT); a network of no declared layer (user builders, ``timm:`` models, test nets) uses
the last module of a dry-run forward whose output is a 4-D (N, C, H, W) map or a token sequence (N, T, C)
with a square grid of patch tokens (outside attention internals), except that a transformer's layer is the
first LayerNorm of its last block (``blocks.N.norm1``): patch tokens after it never reach a class-token head,
so their gradients, and a Grad-CAM map taken there, would be zero. Token outputs are read as a grid: their
patch tokens (the class and distillation tokens dropped) are reshaped to (N, C, side, side) by a forward hook
that routes them through an identity module, and that module is what captum explains. An ensemble's map is the
mean of its members' maps.

Attention rollout (Abnar & Zuidema 2020) multiplies the head-averaged attention matrices of every block, each
mixed half-and-half with the identity for the residual path, and reads the class (and distillation) token's
row over the patch tokens. Our ViTs and timm's compute attention with fused ``scaled_dot_product_attention``,
which never materialises the matrix, so a forward hook on each attention module recomputes softmax(q k^T *
scale) from its input with the module's own ``qkv`` weights (and ``q_norm``/``k_norm`` where present).

Every map is upsampled (bilinear) to the image size, made non-negative and normalised to sum 1 per image,
so it reads as a distribution of "energy" over pixels; an all-zero map becomes uniform.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from libkd_bench.core.errors import BenchError

MAP_SIZE = 32
# The first LayerNorm of a transformer block (timm and our ViTs): in the last block it is the last place whose
# patch tokens still reach a class-token head (through that block's attention); later patch tokens never do.
_FIRST_BLOCK_NORM = re.compile(r"(?:^|\.)blocks\.(\d+)\.norm1$")


@dataclass(frozen=True)
class TargetLayer:
    """What Grad-CAM explains in one network: a module, and whether its output is a token sequence.

    Attributes:
        name: dotted module name inside the model (empty for a network without spatial features).
        module: the module, None when the network has no spatial features (its map is uniform).
        tokens: the output is (N, T, C) tokens whose patch tokens form a square grid.
    """

    name: str
    module: nn.Module | None
    tokens: bool = False


def components(model: nn.Module) -> list[nn.Module]:
    """The networks whose maps are averaged: an ensemble's members, else the model itself."""
    members = getattr(model, "members", None)
    return list(members) if isinstance(members, nn.ModuleList) else [model]


def declared_layer(model: nn.Module, arch: str | None) -> str | None:
    """The registry's ``attention_layer`` of ``arch`` as a name inside ``model`` (the ``network.`` prefixes of
    its wrappers added); None when the architecture declares none or is not registered."""
    from libkd_bench.models.registry import NO_SPATIAL_LAYER, get_architecture

    if not arch:
        return None
    try:
        layer = get_architecture(arch).attention_layer
    except BenchError:
        return None
    if layer is None or layer == NO_SPATIAL_LAYER:
        return layer
    prefix, inner = "", model  # wrappers (preprocessing, class maps) hold the network as ``.network``
    while isinstance(getattr(inner, "network", None), nn.Module):
        prefix, inner = f"{prefix}network.", inner.network
    return prefix + layer


def find_target_layer(model: nn.Module, declared: str | None, sample: torch.Tensor) -> TargetLayer:
    """The layer Grad-CAM explains in ``model``: ``declared`` when given, else found by a dry-run forward.

    Args:
        model: one network (not an ensemble), on its device.
        declared: a dotted module name, ``""`` for no spatial layer, or None to search.
        sample: a small batch of real inputs in [0, 1] for the dry run.

    Raises:
        BenchError: the declared name is not a module of the model, or no module outputs a spatial map.
    """
    if declared == "":
        return TargetLayer("", None)
    outputs = _dry_run(model, sample)
    if declared is not None:
        name = resolve_module_name(model, declared)
        shape = outputs.get(name)
        return TargetLayer(name, model.get_submodule(name), tokens=shape is not None and len(shape) == 3)
    blocks = [(int(m.group(1)), name) for name in outputs if (m := _FIRST_BLOCK_NORM.search(name))]
    if blocks and _token_grid(outputs[max(blocks)[1]]):
        name = max(blocks)[1]
        return TargetLayer(name, model.get_submodule(name), tokens=True)
    for name in reversed(list(outputs)):
        shape = outputs[name]
        if ".attn." not in f".{name}." and (_spatial(shape) or _token_grid(shape)):
            return TargetLayer(name, model.get_submodule(name), tokens=len(shape) == 3)
    raise BenchError(
        "no module of the network outputs a spatial map (N, C, H, W) or patch tokens (N, T, C); "
        "declare attention_layer when registering its architecture"
    )


def resolve_module_name(model: nn.Module, dotted: str) -> str:
    """``dotted`` with every ``-1`` replaced by the name of the last child there (``blocks.-1.norm1`` ->
    ``blocks.11.norm1``), checked to name a module of ``model``."""
    names, module = [], model
    for part in dotted.split("."):
        children = dict(module.named_children())
        if part == "-1" and children:
            part = list(children)[-1]
        if part not in children:
            raise BenchError(f"attention layer {dotted!r} is not a module of the network; fix its registry entry")
        names.append(part)
        module = children[part]
    return ".".join(names)


def _spatial(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4 and shape[2] * shape[3] > 1


def _token_grid(shape: tuple[int, ...]) -> bool:
    if len(shape) != 3:
        return False
    side = math.isqrt(shape[1])
    return side >= 2 and shape[1] - side * side < side


def _dry_run(model: nn.Module, sample: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Output shape of every named module (not the root) in the order their forward passes finished."""
    outputs: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                outputs.pop(name, None)
                outputs[name] = tuple(output.shape)

        return hook

    _hooked_forward(model, sample, [(m, record(n)) for n, m in model.named_modules() if n])
    return outputs


def _hooked_forward(model: nn.Module, inputs: torch.Tensor, hooks: list[tuple[nn.Module, Callable[..., Any]]]) -> None:
    """One inference pass of ``model`` with each forward hook on its module, all removed afterwards."""
    with ExitStack() as stack, torch.inference_mode():
        for module, hook in hooks:
            stack.enter_context(module.register_forward_hook(hook))
        model(inputs)


class TokenGrid(nn.Module):
    """Identity on the (N, C, side, side) grid of patch tokens: the module Grad-CAM explains in a token model."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid


@contextmanager
def token_grid(layer: nn.Module) -> Iterator[TokenGrid]:
    """While open, ``layer``'s (N, T, C) output passes its patch tokens through the returned :class:`TokenGrid`."""
    grid_module = TokenGrid()

    def hook(_module: nn.Module, _inputs: object, tokens: torch.Tensor) -> torch.Tensor:
        n, count, channels = tokens.shape
        side = math.isqrt(count)
        prefix = count - side * side
        grid = grid_module(tokens[:, prefix:].transpose(1, 2).reshape(n, channels, side, side))
        return torch.cat([tokens[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)

    with layer.register_forward_hook(hook):
        yield grid_module


def normalise_maps(maps: torch.Tensor, size: int = MAP_SIZE) -> np.ndarray:
    """(N, 1, h, w) or (N, h, w) raw maps -> float32 (N, size, size), bilinear, non-negative, each summing to 1."""
    from captum.attr import LayerAttribution

    maps = maps.detach().float()
    if maps.ndim == 3:
        maps = maps[:, None]
    if tuple(maps.shape[-2:]) != (size, size):
        maps = LayerAttribution.interpolate(maps, (size, size), interpolate_mode="bilinear")
    maps = maps[:, 0].clamp_min(0.0).cpu().double()
    total = maps.sum(dim=(1, 2), keepdim=True)
    uniform = torch.full_like(maps, 1.0 / (size * size))
    return torch.where(total > 0, maps / total.clamp_min(1e-300), uniform).float().numpy()


def grad_cam(model: nn.Module, layer: TargetLayer, inputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps (captum ``LayerGradCam``, ReLU applied) of ``targets`` classes: float32 (N, 32, 32)."""
    from captum.attr import LayerGradCam

    if layer.module is None:
        return normalise_maps(torch.zeros(len(inputs), 1, MAP_SIZE, MAP_SIZE))
    if layer.tokens:
        with token_grid(layer.module) as grid:
            raw = LayerGradCam(model, grid).attribute(inputs, target=targets, relu_attributions=True)
    else:
        raw = LayerGradCam(model, layer.module).attribute(inputs, target=targets, relu_attributions=True)
    return normalise_maps(raw)


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Self-attention modules a rollout can read (a ``qkv`` projection and ``num_heads``), in forward order."""
    return [m for m in model.modules() if isinstance(getattr(m, "qkv", None), nn.Linear) and hasattr(m, "num_heads")]


def _attention_matrix(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * scale) of one attention module's input ``x`` (N, T, C): (N, heads, T, T)."""
    n, count, _ = x.shape
    heads = int(module.num_heads)
    qkv = module.qkv(x).reshape(n, count, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    if isinstance(getattr(module, "q_norm", None), nn.Module):
        q, k = module.q_norm(q), module.k_norm(k)
    scale = float(getattr(module, "scale", q.shape[-1] ** -0.5))
    return torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)


def attention_rollout(attentions: list[torch.Tensor], prefix: int) -> torch.Tensor:
    """Rollout of per-block attention (N, heads, T, T), first block first: (N, side, side) over the patch grid.

    Each block's head mean is mixed half-and-half with the identity (the residual path), rows renormalised,
    and the blocks multiplied in order; the map is the mean of the ``prefix`` leading tokens' rows (class and
    distillation tokens) over the patch tokens.
    """
    if not attentions:
        raise ValueError("attention rollout needs at least one block")
    rollout = None
    for attention in attentions:
        mixed = 0.5 * attention.mean(dim=1) + 0.5 * torch.eye(attention.shape[-1], device=attention.device)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    count = rollout.shape[-1]
    side = math.isqrt(count - prefix)
    if side * side != count - prefix or prefix < 1:
        raise ValueError(f"{count} tokens with {prefix} prefix tokens do not form a square patch grid")
    return rollout[:, :prefix, prefix:].mean(dim=1).reshape(-1, side, side)


def rollout_maps(model: nn.Module, modules: list[nn.Module], inputs: torch.Tensor) -> np.ndarray:
    """Attention-rollout maps of ``inputs``: float32 (N, 32, 32), from a forward pass with hooks on ``modules``."""
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], _output: object) -> None:
        # rollout uses only the mean over heads: keep that, not every head's (T, T) matrix
        captured.append(_attention_matrix(module, args[0]).mean(dim=1, keepdim=True))

    _hooked_forward(model, inputs, [(m, hook) for m in modules])
    count = captured[0].shape[-1]
    prefix = count - math.isqrt(count) ** 2
    return normalise_maps(attention_rollout(captured, prefix))
