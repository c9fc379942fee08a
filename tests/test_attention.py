"""Attention alignment: known answers of the map metrics and of rollout, Grad-CAM layers of every registered
architecture, and ``score --teacher --baseline`` / ``leaderboard`` end to end on a tiny synthetic store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import sweep_param, synthetic_images
from scoring_fixtures import TinyNet

from libkd_bench.cli import main
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.metrics.alignment import mask_energy, pointing_game, spearman_agreement, top_iou
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.models.registry import NO_SPATIAL_LAYER, get_architecture, registered_entries
from libkd_bench.records.run_record import safe_name
from libkd_bench.scoring.attention import alignment_rows, compute_maps
from libkd_bench.scoring.attention_maps import (
    attention_modules,
    attention_rollout,
    declared_layer,
    find_target_layer,
    grad_cam,
    normalise_maps,
    resolve_module_name,
    rollout_maps,
)
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine

# ---------------------------------------------------------------------------------------------------- metrics


def test_spearman_known_answers() -> None:
    a = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    # ranks 1 2 3 4 vs 1 3 2 4: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman_agreement(a, np.array([[[1.0, 3.0], [2.0, 4.0]]])) == pytest.approx([0.8])
    assert spearman_agreement(a, a) == pytest.approx([1.0])
    assert spearman_agreement(a, -a) == pytest.approx([-1.0])
    # ties get average ranks: [1, 1, 2, 2] -> ranks 1.5 1.5 3.5 3.5, Pearson with 1 2 3 4 = 4 / sqrt(4 * 5)
    ties = np.array([[[1.0, 1.0], [2.0, 2.0]]])
    assert spearman_agreement(a, ties) == pytest.approx([4 / np.sqrt(20)])
    constant = np.ones((1, 2, 2))
    # a constant map (an all-zero Grad-CAM, say) has no ordering: agreement is undefined, not perfect
    assert np.isnan(spearman_agreement(constant, constant)).all()
    assert np.isnan(spearman_agreement(constant, a)).all()
    assert np.isnan(spearman_agreement(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))).all()


def test_shuffled_maps_agree_about_zero() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((300, 32, 32)) ** 3
    shuffled = rng.permuted(maps.reshape(300, -1), axis=1).reshape(maps.shape)
    assert abs(spearman_agreement(maps, shuffled).mean()) < 0.01
    # unrelated top-20% regions overlap by chance only: 0.2 / (2 - 0.2)
    assert top_iou(maps, shuffled).mean() == pytest.approx(0.2 / 1.8, abs=0.01)
    assert spearman_agreement(maps, maps) == pytest.approx(np.ones(300))


def test_top_iou_known_answer() -> None:
    a = np.array([[[5.0, 4.0, 3.0, 2.0, 1.0]]])
    b = np.array([[[1.0, 4.0, 5.0, 2.0, 3.0]]])
    # top 40% of 5 pixels = 2: {0, 1} and {2, 1} -> 1 / 3
    assert top_iou(a, b, share=0.4) == pytest.approx([1 / 3])
    assert top_iou(a, a) == pytest.approx([1.0])
    flat = np.zeros((1, 1, 5))
    assert np.isnan(top_iou(flat, flat)).all()  # two all-zero maps have no top region: undefined, not 1
    ties = np.array([[[1.0, 1.0, 0.0, 0.0, 0.0]]])
    assert top_iou(ties, ties, share=0.2) == pytest.approx([1.0])  # ties broken the same way in both maps


def test_alignment_rows_leave_out_and_count_constant_maps() -> None:
    from libkd_bench.metrics.bootstrap import BootstrapConfig
    from libkd_bench.scoring.attention import alignment_rows

    rng = np.random.default_rng(3)
    own = rng.random((40, 4, 4))
    teacher = own.copy()
    own[:5] = 0.0  # five all-zero maps
    found = alignment_rows({"gradcam": own}, None, {"gradcam": teacher}, None, BootstrapConfig())
    rows = {row.metric: row for row in found}
    assert rows["agreement_spearman_undefined"].value == 5
    assert rows["agreement_spearman"].value == pytest.approx(1.0)  # the 35 defined images agree perfectly
    assert rows["agreement_spearman"].n == 35


def test_mask_energy_and_pointing_game_known_answers() -> None:
    mask = np.array([[[True, False], [False, True]]])
    assert mask_energy(mask.astype(float), mask) == pytest.approx([1.0])
    assert mask_energy(np.array([[[1.0, 3.0], [0.0, 4.0]]]), mask) == pytest.approx([5 / 8])
    assert mask_energy(np.zeros((1, 2, 2)), mask) == pytest.approx([0.5])  # all-zero map: uniform
    assert pointing_game(np.array([[[1.0, 3.0], [0.0, 4.0]]]), mask) == pytest.approx([1.0])
    assert pointing_game(np.array([[[1.0, 5.0], [0.0, 4.0]]]), mask) == pytest.approx([0.0])
    assert pointing_game(np.array([[[2.0, 2.0], [0.0, 2.0]]]), mask) == pytest.approx([1.0])  # first peak
    with pytest.raises(ValueError, match="non-negative"):
        mask_energy(-np.ones((1, 2, 2)), mask)


def test_alignment_rows_identical_model_and_mask_focus() -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((40, 32, 32)) > 0.5
    own = {"gradcam": masks.astype(np.float32) / masks.sum(axis=(1, 2), keepdims=True)}
    other = {"gradcam": rng.random((40, 32, 32)).astype(np.float32)}
    rows = {row.metric: row for row in alignment_rows(own, masks, own, other, BootstrapConfig())}
    assert rows["agreement_spearman"].value == pytest.approx(1.0)
    assert (rows["agreement_spearman"].ci_low, rows["agreement_spearman"].ci_high) == pytest.approx((1.0, 1.0))
    assert rows["agreement_iou20"].value == pytest.approx(1.0)
    assert rows["object_focus"].value == pytest.approx(1.0)
    assert rows["pointing_game"].value == pytest.approx(1.0)
    assert abs(rows["baseline_agreement_spearman"].value) < 0.1
    diff = rows["agreement_spearman_diff_baseline"]
    assert diff.value == pytest.approx(1.0 - rows["baseline_agreement_spearman"].value)
    assert diff.ci_low > 0.8
    assert {row.set for row in rows.values()} == {"attention"}
    assert all(row.n == 40 for row in rows.values())


# ---------------------------------------------------------------------------------------------------- rollout


def test_rollout_known_answers() -> None:
    identity = torch.eye(5).expand(1, 2, 5, 5)
    # identity attention never moves information: the class token's row holds nothing of the patches
    assert attention_rollout([identity, identity], prefix=1).abs().max() == 0.0
    assert normalise_maps(attention_rollout([identity], prefix=1)[:, None]) == pytest.approx(
        np.full((1, 32, 32), 1 / 1024)
    )
    to_patch = torch.eye(5).clone()
    to_patch[0] = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0])  # the class token reads patch 2 (grid cell (1, 0))
    rollout = attention_rollout([to_patch.expand(1, 3, 5, 5)], prefix=1)
    assert rollout[0].numpy() == pytest.approx(np.array([[0.0, 0.0], [0.5, 0.0]]))
    # two blocks: the class token's remaining half reads patch 2 again: 0.5 + 0.5 * 0.5
    twice = attention_rollout([to_patch.expand(1, 3, 5, 5)] * 2, prefix=1)
    assert twice[0].numpy() == pytest.approx(np.array([[0.0, 0.0], [0.75, 0.0]]))


# ---------------------------------------------------------------------------------------------------- target layers


def _check_maps(model: torch.nn.Module, declared: str | None, size: int = 32) -> str:
    inputs = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    layer = find_target_layer(model, declared, inputs[:2])
    maps = grad_cam(model, layer, inputs, torch.tensor([0, 1, 2]))
    assert maps.shape == (3, 32, 32)
    assert maps.dtype == np.float32
    assert (maps >= 0).all()
    assert maps.sum(axis=(1, 2)) == pytest.approx(np.ones(3), abs=1e-4)
    if layer.tokens:  # patch tokens after a ViT's last attention have no gradient: their maps would be uniform
        assert (maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))).max() > 1e-6, f"{layer.name} gives uniform maps"
    if attention_modules(model) and layer.tokens:
        rollout = rollout_maps(model, attention_modules(model), inputs)
        assert rollout.shape == (3, 32, 32)
    return layer.name


# Large members of families that also have a small one tested on every run.
SLOW_ARCHITECTURES = {
    *("resnet32_a", "resnet44_a", "resnet56_a", "resnet110_a", "resnet32_b", "resnet44_b", "resnet56_b"),
    *("resnet110_b", "resnet32x4", "vgg13_bn", "vgg16_bn", "vgg19_bn", "wrn_40_1", "wrn_40_2", "wrn_28_10"),
    *("rednet26", "rednet38", "rednet50", "vit_cifar_small", "vit_cifar_small_distilled", "shufflenet_v1"),
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small batches: one thread is as fast, and on a busy machine much faster than waiting for a second core."""
    with torch_threads(1):
        yield


@pytest.mark.parametrize(
    "name",
    [sweep_param(e.name, slow=e.name in SLOW_ARCHITECTURES) for e in registered_entries()],
)
def test_every_registered_architecture_has_a_grad_cam_layer(name: str) -> None:
    entry = get_architecture(name)
    torch.manual_seed(0)
    model = entry.build(10).eval()
    assert entry.attention_layer is not None, f"{entry.name} declares no attention layer"
    name = _check_maps(model, declared_layer(model, entry.name))
    if entry.attention_layer == NO_SPATIAL_LAYER:
        assert name == ""
    else:
        assert name == resolve_module_name(model, entry.attention_layer)
        assert model.get_submodule(name) is not None


@pytest.mark.parametrize(
    ("name", "tokens"),
    [("timm:resnet10t", False), ("timm:deit_tiny_distilled_patch16_224", True)],
)
@pytest.mark.slow  # importing timm alone takes seconds
def test_timm_models_fall_back_to_the_last_spatial_output(name: str, tokens: bool) -> None:
    entry = get_architecture(name)
    assert entry.attention_layer is None
    torch.manual_seed(0)
    size = 64  # both take any input size (the ViT given img_size), and 64 px keeps the test quick
    model = entry.build(10, **({"img_size": size} if tokens else {})).eval()
    inputs = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    layer = find_target_layer(model, declared_layer(model, name), inputs)
    assert layer.tokens is tokens
    assert layer.name == ("blocks.11.norm1" if tokens else "layer4")
    _check_maps(model, None, size)


def test_user_network_falls_back_to_last_conv_and_wrapped_names_are_prefixed() -> None:
    model = TinyNet()
    assert _check_maps(model, declared_layer(model, "not-registered")) == "conv"
    torch.manual_seed(0)
    vit = get_architecture("vit_cifar_tiny_distilled").build(10).eval()
    assert _check_maps(vit, None) == "blocks.11.norm1"  # undeclared transformer: its last block's norm1

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = get_architecture("resnet8_b").build(10).eval()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.network(x)

    assert declared_layer(Wrapped(), "resnet8_b") == "network.layer3"
    twice = Wrapped()
    twice.network = Wrapped()  # e.g. a class map around the preprocessing wrapper
    assert declared_layer(twice, "resnet8_b") == "network.network.layer3"


class TwoTiny(torch.nn.Module):
    """An ensemble as the scorer sees one: members in a ``ModuleList``, mean logits."""

    def __init__(self) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList([TinyNet(0), TinyNet(1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


def test_ensemble_map_is_the_mean_of_its_members_maps() -> None:
    images, labels = synthetic_images(12)
    ensemble = TwoTiny()

    def maps(model: torch.nn.Module, arch: str | None) -> dict[str, Any]:
        return compute_maps(ForwardEngine(model, EngineConfig("cpu", 5)), arch, images, labels)

    members = [maps(member, None)["gradcam"] for member in ensemble.members]
    combined = maps(ensemble, "tiny+tiny")
    np.testing.assert_allclose(combined["gradcam"], (members[0] + members[1]) / 2, atol=1e-6)
    assert combined["layer"] == "conv,conv"
    assert combined["rollout"] is None


# ---------------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 60-image synthetic store with segmentation; teacher, baseline and student (= teacher's weights) scored."""
    root = tmp_path_factory.mktemp("attention")
    images, labels = synthetic_images(60)
    np.savez(root / "split.npz", x=images, y=labels)
    args = [
        "--source",
        f"npz:{root / 'split.npz'}",
        "--sets-dir",
        str(root / "sets"),
        "--workers",
        "1",
        "--no-progress",
    ]
    assert main(["generate-sets", *args, "--sets", "segmentation"]) == 0
    paths = {}
    for name, seed in (("teacher", 0), ("baseline", 1)):
        torch.manual_seed(seed)
        paths[name] = root / f"{name}.pt"
        torch.save(get_architecture("resnet8_b").build(10).state_dict(), paths[name])
    paths["student"] = root / "student.pt"
    paths["student"].write_bytes(paths["teacher"].read_bytes())
    base = ["--arch", "resnet8_b", "--sets-dir", str(root / "sets"), "--adv", "none", "--no-progress"]
    common = [*base, "--results", str(root / "results"), "--attention-n", "20"]
    for name in ("teacher", "baseline"):
        assert main(["score", str(paths[name]), *common]) == 0
    assert main(["score", str(paths["student"]), *common, "--teacher", "teacher", "--baseline", "baseline"]) == 0
    return {"root": root, "results": root / "results", "base": base, **paths}


@pytest.mark.slow
def test_student_equal_to_teacher_agrees_exactly(scored: dict[str, Any]) -> None:
    record = json.loads(next((scored["results"] / "runs").glob("student@*.json")).read_text())
    rows = {r["metric"]: r for r in record["metrics"] if r["set"] == "attention"}
    assert rows["agreement_spearman"]["value"] == pytest.approx(1.0)
    assert rows["agreement_iou20"]["value"] == pytest.approx(1.0)
    assert rows["baseline_agreement_spearman"]["value"] < 1.0
    assert 0.0 <= rows["object_focus"]["value"] <= 1.0
    # a random-weight net can give a constant map on some image: that image has no defined agreement and is
    # counted apart, never read as perfect agreement
    undefined = rows.get("agreement_spearman_undefined", {"value": 0})["value"]
    assert rows["agreement_spearman"]["n"] + undefined == record["scoring"]["attention"]["n"] > 0
    assert rows["agreement_spearman"]["n"] > 0
    assert (scored["results"] / record["logits"] / record["scoring"]["attention"]["file"]).is_file()


@pytest.mark.slow
def test_rescore_rebuilds_the_alignment_rows_from_the_cached_maps(
    scored: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = next((scored["results"] / "runs").glob("student@*.json"))
    before = json.loads(path.read_text())
    code, _, err = run_cli(["rescore", "student", "--results", str(scored["results"])], capsys)
    assert code == 0, err
    after = json.loads(path.read_text())
    assert after["metrics"] == before["metrics"]
    assert any(row["set"] == "attention" for row in after["metrics"])


@pytest.mark.slow
def test_leaderboard_writes_attention_column_and_panel(
    scored: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = scored["root"] / "board"
    code, stdout, _ = run_cli(["leaderboard", "--results", str(scored["results"]), "--out", str(out)], capsys)
    assert code == 0
    assert "Attention alignment" in stdout
    assert "1.00 [1.00, 1.00]; baseline" in stdout
    record = json.loads(next((scored["results"] / "runs").glob("student@*.json")).read_text())
    panels = sorted(p.name for p in out.glob("attention_*.png"))
    assert panels == [f"attention_student_{safe_name(record['source']['id'])}.png"]
    assert (out / panels[0]).read_bytes().startswith(b"\x89PNG")
    csv = (out / "leaderboard.csv").read_text()
    assert ",attention,,agreement_spearman," in csv


@pytest.mark.slow
def test_teacher_without_maps_is_a_one_line_error(scored: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    results = scored["root"] / "results-no-maps"
    common = [*scored["base"], "--results", str(results), "--attention-n", "20"]
    assert main(["score", str(scored["teacher"]), *common, "--no-attention", "--name", "t"]) == 0
    code, _, err = run_cli(["score", str(scored["student"]), *common, "--teacher", "t"], capsys)
    assert_one_line_error(code, err, "teacher run t@", "no cached attention maps", "score the teacher again")
    assert not list((results / "runs").glob("student@*"))
