"""Control models whose bias is known by construction: the instruments that show a derived set measures its cue.

Each control is an ordinary registered architecture (trained by the project's recipes, shipped in the zoo), so
``libkd-bench score`` and ``validate`` run it like any checkpoint. What a control *cannot* see is fixed in its
forward pass, not learned, so its reading on a set is a known answer:

- ``control_colour``: a joint RGB colour histogram (8 bins per channel, 512 bins) -> MLP. It has no spatial
  information at all: any permutation of pixels (``scramble``) gives bit-identical logits, because the
  histogram is a sum of exact 0/1 counts. On a silhouette it sees only the share of ink and paper.
- ``control_bagnet``: a bag-of-local-features CNN (BagNet-style): two 3x3 convolutions, the second with
  stride 2, so every output position sees a 5x5 pixel window and no more; 1x1 layers map each window to class
  evidence, and the logits are the mean over positions. It can use colour and texture within 5 px and no
  global arrangement. (With 9x9 windows, a third of a CIFAR object's width, it read outlines: its
  chance-corrected shape bias on cue-conflict was 0.46, as high as ResNet-20's.)
- ``control_shape``: sees a binary figure/ground map only. A fixed front end takes each pixel's colour distance
  to the median colour of the image border, quantises it relative to the image's largest distance, splits it
  with Otsu's threshold (per image), opens/closes it with 3x3 windows to erase texture-sized specks, keeps the
  largest 8-connected region and fills its holes (background not reachable from the border); a CNN classifies
  the resulting one-bit map. Colour and surface texture never reach the CNN, so it can only answer from the
  outline (and, on a texture-only image, from the noise the threshold makes of it). The front end takes whatever
  the network is given, unclamped: the median and the distances follow any per-channel affine normalisation, and
  the quantisation relative to the largest distance cancels its scale, so a normalised image splits as its
  [0, 1] pixels would (exactly for a scale shared by the channels; CIFAR-10's three stds differ by under 8 %).
  Dark pixels stay what they are: a texture fill darker than the dataset mean is still figure on black paper,
  and a light silhouette on black is split as well as a textured object on its background. All of it runs on
  the whole batch at once: connected regions are found by spreading labels along whole rows and columns of a
  region per step, so a batch takes a handful of steps, not one per pixel of its longest region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from libkd_bench.core.normalisation import Preset
from libkd_bench.models.registry import NO_SPATIAL_LAYER, register_architecture

SOURCE = "libkd-bench control models (reference/control recipes)"
HISTOGRAM_BINS = 8  # per channel; 8**3 = 512 joint bins
BORDER = 1  # width in pixels of the ring whose median colour is the background estimate
OTSU_LEVELS = 64
MIN_DISTANCE = 1e-3  # colour distances below this (in the input's units) are no figure: a flat image stays empty


class ColourHistogramNet(nn.Module):
    """Joint RGB histogram of the image (no spatial information) -> two-layer MLP."""

    def __init__(self, num_classes: int = 10, bins: int = HISTOGRAM_BINS, hidden: int = 256) -> None:
        super().__init__()
        self.bins = bins
        self.histogram_mlp = nn.Sequential(
            nn.Linear(bins**3, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    def histogram(self, x: torch.Tensor) -> torch.Tensor:
        """(N, bins**3) square roots of the pixel shares per joint colour bin (Hellinger features), exact counts."""
        levels = torch.round(x.float().clamp(0.0, 1.0) * 255.0).to(torch.int64)  # back to the 8-bit values
        q = (levels * self.bins) // 256  # (N, 3, H, W) bin per channel
        index = (q[:, 0] * self.bins + q[:, 1]) * self.bins + q[:, 2]
        n = x.shape[0]
        counts = torch.zeros(n, self.bins**3, dtype=torch.float32, device=x.device)
        counts.scatter_add_(1, index.flatten(1), torch.ones_like(index.flatten(1), dtype=torch.float32))
        return torch.sqrt(counts / float(index[0].numel()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.histogram_mlp(self.histogram(x))


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class LocalBagNet(nn.Module):
    """Bag of 5x5-pixel features: per-position class evidence averaged over positions (receptive field 5 px)."""

    def __init__(self, num_classes: int = 10, width: int = 96) -> None:
        super().__init__()
        # receptive field: 3 (conv 1), 3 + 2 = 5 (conv 2, stride 2); 1x1 layers add nothing.
        self.bag = nn.Sequential(
            _conv_bn(3, width // 2),
            _conv_bn(width // 2, width, stride=2),
            nn.Conv2d(width, 2 * width, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )
        self.evidence = nn.Conv2d(2 * width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.evidence(self.bag(x)).mean(dim=(2, 3))


def figure_ground(x: torch.Tensor) -> torch.Tensor:
    """One-bit figure/ground maps, float (N, 1, H, W) in {0, 1}, of images in any per-channel scaling (see the
    module docstring): raw [0, 1] pixels and normalised ones split alike, dark pixels included."""
    x = blur(x.float())
    n, _, h, w = x.shape
    ring = torch.ones(h, w, dtype=torch.bool, device=x.device)
    ring[BORDER : h - BORDER, BORDER : w - BORDER] = False
    border_colour = x[:, :, ring].median(dim=2).values  # (N, 3)
    distance = (x - border_colour[:, :, None, None]).pow(2).sum(dim=1).flatten(1).sqrt()  # (N, H*W), input units
    scale = distance.amax(dim=1, keepdim=True).clamp_min(MIN_DISTANCE)
    levels = (distance / scale * (OTSU_LEVELS - 1)).round().to(torch.int64).clamp(0, OTSU_LEVELS - 1)
    figure = (levels > otsu_threshold(levels, OTSU_LEVELS)[:, None]).view(n, 1, h, w).float()
    figure = -F.max_pool2d(-F.max_pool2d(figure, 3, 1, 1), 3, 1, 1)  # closing: bridge 1-px gaps
    figure = F.max_pool2d(-F.max_pool2d(-figure, 3, 1, 1), 3, 1, 1)  # opening: erase specks under 3x3
    return fill_holes(largest_component(figure))


def blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial smoothing per channel (replicated borders): texture finer than 2 px no longer splits."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16.0).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def run_max(values: torch.Tensor, region: torch.Tensor, dim: int) -> torch.Tensor:
    """Each pixel of ``region`` (float (N, H, W) in {0, 1}) given the largest of ``values`` (float32 whole numbers
    >= 0, (N, H, W)) over its run, the unbroken stretch of region pixels along ``dim`` that holds it; 0 outside.

    One pass for all runs at once: a run's pixels share a segment number (the count of non-region pixels up to
    them), so a cumulative maximum of ``segment * big + value`` never carries a value across a gap. Every number
    stays a whole number below 2**24, so float32 holds it exactly.
    """
    big = float(values.max()) + 1.0
    both = torch.cat([values, values.flip(dim)])  # forward and backward passes in one
    gaps = 1.0 - torch.cat([region, region.flip(dim)])
    segment = gaps.cumsum(dim) * big
    swept = (both + segment).cummax(dim).values - segment
    forward, backward = swept.chunk(2)
    return torch.maximum(forward, backward.flip(dim)) * region


def spread_max(values: torch.Tensor, region: torch.Tensor, jump: bool = False) -> torch.Tensor:
    """Every pixel of ``region`` (float (N, H, W) in {0, 1}) given the largest of ``values`` (float32 whole
    numbers >= 0) in its 8-connected component of the region; 0 outside. All maps at once.

    Each step spreads values along whole rows and columns of region pixels (:func:`run_max`) and then to the
    diagonal neighbours (3x3 max pooling), so a component is crossed in about as many steps as its outline has
    turns, not as it has pixels. With ``jump`` (``values`` being 1 + a flat pixel index, as in
    :func:`component_labels`) every pixel also takes the value held by the pixel its value names, which lies in
    the same component. Each step works only on the maps that changed in the last one.
    """
    n, h, w = region.shape
    values = values * region
    active = torch.arange(n, device=region.device)
    for _ in range(h * w):
        current, inside = values[active], region[active]
        grown = run_max(run_max(current, inside, 2), inside, 1)
        grown = F.max_pool2d(grown[:, None], 3, 1, 1)[:, 0] * inside
        if jump:
            flat = grown.flatten(1)
            named = F.pad(flat, (1, 0)).gather(1, flat.to(torch.int64))  # value k sits at position k
            grown = torch.maximum(flat, named).view_as(grown)
        changed = (grown != current).flatten(1).any(dim=1)
        values[active] = grown
        active = active[changed]
        if active.numel() == 0:
            break
    return values


def component_labels(region: torch.Tensor) -> torch.Tensor:
    """8-connected components of binary maps (N, 1, H, W), all images at once: int64 (N, H*W), each pixel of a
    region labelled with 1 + the largest flat index in its component, 0 elsewhere."""
    n, _, h, w = region.shape
    inside = (region[:, 0] > 0).float()
    index = torch.arange(1, h * w + 1, dtype=torch.float32, device=region.device).view(1, h, w).expand(n, h, w)
    return spread_max(index.clone(), inside, jump=True).flatten(1).to(torch.int64)


def largest_component(figure: torch.Tensor) -> torch.Tensor:
    """Keep each map's largest 8-connected figure region (:func:`component_labels`), all maps at once."""
    n, _, h, w = figure.shape
    labels = component_labels(figure)
    sizes = torch.zeros(n, h * w + 1, dtype=torch.int64, device=figure.device)
    sizes.scatter_add_(1, labels, torch.ones_like(labels))
    sizes[:, 0] = 0
    best = sizes.argmax(dim=1, keepdim=True)
    return ((labels == best) & (best > 0)).view(n, 1, h, w).to(figure.dtype)


def otsu_threshold(levels: torch.Tensor, bins: int) -> torch.Tensor:
    """Otsu's threshold per row of integer ``levels`` (N, P) in [0, bins): the level t maximising the
    between-class variance of {v <= t} and {v > t}; int64 (N,)."""
    n = levels.shape[0]
    hist = torch.zeros(n, bins, dtype=torch.float64, device=levels.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    values = torch.arange(bins, dtype=torch.float64, device=levels.device)
    below, below_sum = hist.cumsum(1), (hist * values).cumsum(1)
    total, total_sum = below[:, -1:], below_sum[:, -1:]
    above = total - below
    between = (total_sum * below - total * below_sum) ** 2 / (below * above).clamp_min(1e-12)
    between = torch.where((below > 0) & (above > 0), between, torch.full_like(between, -1.0))
    return between.argmax(dim=1)


def fill_holes(figure: torch.Tensor) -> torch.Tensor:
    """Figure maps (N, 1, H, W) with every background region (8-connected) that touches no border pixel filled."""
    n, _, h, w = figure.shape
    background = (figure[:, 0] <= 0).float()
    ring = torch.ones(h, w, device=figure.device)
    ring[1:-1, 1:-1] = 0.0
    reached = spread_max(ring.expand(n, h, w).clone(), background)  # 1 where the border's background reaches
    return (1.0 - reached).view(n, 1, h, w).to(figure.dtype)


class ShapeOnlyNet(nn.Module):
    """A CNN that sees only the image's figure/ground map (:func:`figure_ground`)."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.shape_net = nn.Sequential(
            _conv_bn(1, width),
            _conv_bn(width, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            _conv_bn(2 * width, 2 * width),
            nn.MaxPool2d(2),
            _conv_bn(2 * width, 4 * width),
            _conv_bn(4 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(4 * width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shape_net(figure_ground(x))


CONTROLS = (
    ("control_colour", ColourHistogramNet, "histogram_mlp.3", Preset.NONE,
     "joint RGB colour histogram -> MLP; no spatial information (shape- and layout-blind)"),
    ("control_bagnet", LocalBagNet, "evidence", Preset.CIFAR10,
     "bag of 5x5-pixel local features, logits averaged over positions (texture-biased)"),
    ("control_shape", ShapeOnlyNet, "shape_net.11", Preset.CIFAR10,
     "CNN on a one-bit figure/ground map of the image (sees the outline only)"),
)  # fmt: skip
# Grad-CAM layers: the colour control has no spatial features (uniform map), the others their last 4-D output.
_ATTENTION_LAYERS = {"control_colour": NO_SPATIAL_LAYER, "control_bagnet": "bag", "control_shape": "shape_net.7"}
for _name, _builder, _classifier, _preset, _what in CONTROLS:
    register_architecture(
        _name,
        family="control",
        source=SOURCE,
        description=f"control: {_what}",
        classifier=(_classifier,),
        preset=_preset,
        attention_layer=_ATTENTION_LAYERS[_name],
    )(_builder)
