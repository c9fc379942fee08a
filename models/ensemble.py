"""Teacher ensembles scored as one model, e.g. LIB-KD's CNN + involution (RedNet) teacher.

Each member is a loaded, wrapped model with its own architecture and preprocessing (all take [0, 1] images),
so a ResNet with CIFAR statistics and a RedNet with ImageNet statistics combine without care. The ensemble's
logits are the mean of the members' logits (``mean-logits``, what LIB-KD distils from) or the log of the mean
of their softmax probabilities (``mean-probs``, a probability-averaging ensemble). Everything downstream (sets,
attacks, which see the whole ensemble, efficiency, the logits cache) treats the result as one model.

Identity: the ensemble's ``sha256`` hashes every member's checkpoint sha256 and full spec, in order, with the
combination rule, so a cache entry or record of one ensemble never passes for another. The members' own
checkpoint and spec records are kept under ``checkpoint.metadata.members``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset
from libkd_bench.core.provenance import sha256_json
from libkd_bench.models.loading.checkpoints import CheckpointInfo
from libkd_bench.models.loading.load import LoadedModel
from libkd_bench.models.spec import ModelSpec, enum_member

ENSEMBLE_FORMAT = "ensemble"


class Combine(str, enum.Enum):
    """How member logits become the ensemble's logits."""

    MEAN_LOGITS = "mean-logits"
    MEAN_PROBS = "mean-probs"


class EnsembleClassifier(nn.Module):
    """Wrapped members behind one forward: float (N, 3, H, W) in [0, 1] -> (N, num_classes) logits."""

    def __init__(self, members: Sequence[nn.Module], combine: Combine) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(images) for member in self.members])
        if self.combine is Combine.MEAN_LOGITS:
            return logits.mean(dim=0)
        # log of the mean probability, computed stably; its softmax is exactly the mean of the members' softmax
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        return torch.logsumexp(log_probs, dim=0) - torch.log(torch.tensor(float(len(self.members))))


def ensemble_model(members: Sequence[LoadedModel], combine: Combine | str = Combine.MEAN_LOGITS) -> LoadedModel:
    """One :class:`LoadedModel` whose logits combine ``members``' (at least two, same class count, same device)."""
    combine = enum_member(Combine, combine, "ensemble combination")
    if len(members) < 2:
        raise BenchError(f"an ensemble needs at least two checkpoints, got {len(members)}; drop --ensemble for one")
    classes = {member.spec.num_classes for member in members}
    if len(classes) != 1:
        counts = ", ".join(f"{m.checkpoint.path}: {m.spec.num_classes}" for m in members)
        raise BenchError(f"ensemble members disagree on the number of classes ({counts}); ensemble like with like")
    described = [{"checkpoint": m.checkpoint.to_json(), "spec": m.spec.to_json()} for m in members]
    identity = [(d["checkpoint"]["sha256"], d["spec"]) for d in described]
    digest = sha256_json([combine.value, identity])
    mean, std = PRESET_STATS[Preset.NONE]  # each member normalises its own input
    spec = ModelSpec(
        arch="+".join(m.spec.arch for m in members),
        num_classes=classes.pop(),
        mean=mean,
        std=std,
        preset=Preset.NONE,
        arch_kwargs={"ensemble": combine.value},
    )
    checkpoint = CheckpointInfo(
        path="+".join(m.checkpoint.path for m in members),
        sha256=digest,
        format=ENSEMBLE_FORMAT,
        metadata={"combine": combine.value, "members": described},
        size_bytes=sum(m.checkpoint.size_bytes for m in members),
    )
    return LoadedModel(
        module=EnsembleClassifier([m.module for m in members], combine).eval(),
        spec=spec,
        checkpoint=checkpoint,
        num_parameters=sum(m.num_parameters for m in members),
        arch_detected=all(m.arch_detected for m in members),
    )
