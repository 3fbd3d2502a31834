"""The detector's global-level ranking term can be GAP, AP loss or RS loss (Table 2, Figure 4)."""
from __future__ import annotations

import copy

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

from rog.config import resolve_run
from rog.losses import APLoss, CategoryCounts, GAPLoss, RSLoss
from rog.losses.ranking_terms import RANKING_TERMS, as_gap_section, build_ranking, from_gap_section
from rog.models.builder import build_detector, build_ranking_module, classifier
from rog.models.roi_heads import predicted_box_ious
from test_models import model_params, random_batch


def test_build_ranking_picks_the_term_by_name():
    assert build_ranking_module({"name": None, "weight": 1.0, "params": {"delta": 2.0}}, 4) is None
    gap = build_ranking_module({"name": "gap", "weight": 0.3, "params": {}}, 4)
    assert isinstance(gap, GAPLoss) and gap.loss_weight == 0.3 and (gap.delta, gap.gamma) == (0.5, 1.0)
    ap = build_ranking_module({"name": "ap_loss", "weight": 0.3, "params": {"delta": 1.0}}, 4)
    assert isinstance(ap, APLoss) and ap.delta == 1.0 and ap.loss_weight == 0.3
    assert build_ranking("ap_loss", 4).delta == 1.0  # its own default, its paper's
    rs = build_ranking_module({"name": "rs_loss", "params": {}}, 4)
    assert isinstance(rs, RSLoss) and rs.needs_ious and not gap.needs_ious and not ap.needs_ious
    assert set(RANKING_TERMS) == {"gap", "ap_loss", "rs_loss"}
    with pytest.raises(ValueError, match="unknown ranking term 'focal'; valid: gap, ap_loss, rs_loss"):
        build_ranking("focal", 4)
    with pytest.raises(ValueError, match="rs_loss has no option 'gamma'; valid: delta"):
        build_ranking("rs_loss", 4, gamma=1.0)
    with pytest.raises(ValueError, match="weighting='dataset' needs class_counts"):
        build_ranking("gap", 4, weighting="dataset")


def test_gap_reads_class_counts_for_dataset_weighting_only():
    counts = CategoryCounts.from_instance_counts(torch.tensor([5.0, 1.0, 2.0, 9.0]))
    assert build_ranking("gap", 4, class_counts=counts).class_counts.tolist() == [0.0] * 4  # online: from zero
    fixed = build_ranking("gap", 4, class_counts=counts, weighting="dataset")
    assert fixed.class_counts.tolist() == [5.0, 1.0, 2.0, 9.0]


@pytest.mark.parametrize("old", [
    {"enabled": True, "loss": "gap", "loss_weight": 0.1, "delta": 0.5, "gamma": 0.0, "weighting": "online",
     "exclude_fg": True, "rank_offset": 0.5, "sync_counts": True},
    {"enabled": True, "loss": "ap_loss", "loss_weight": 1.0, "delta": 1.0, "gamma": 1.0, "weighting": "online",
     "exclude_fg": True, "rank_offset": 0.5, "sync_counts": True},
    {"enabled": False, "loss": "gap", "loss_weight": 1.0, "delta": 0.5, "gamma": 1.0, "weighting": "online",
     "exclude_fg": True, "rank_offset": 0.5, "sync_counts": True},
])
def test_the_old_gap_section_reads_and_writes_back_unchanged(old):
    new = from_gap_section(old)
    assert as_gap_section(new) == old
    assert new["name"] == (old["loss"] if old["enabled"] else None) and new["weight"] == old["loss_weight"]
    assert from_gap_section(old)["params"] == ({"gamma": 0.0} if old["gamma"] == 0.0 else {})  # defaults left out


def test_old_checkpoints_and_run_folders_load_and_hash_as_before(tmp_path):
    """A checkpoint written with model.gap: its params read as model.ranking, GAP's counts under
    roi_heads.ranking, and its params hash (the identity of its run) unchanged."""
    from rog.engine import checkpoint, rundir

    params = resolve_run("params.yaml", "smoke", "gap_only_gamma0")
    old = copy.deepcopy(params)
    old["model"]["gap"] = as_gap_section(old["model"].pop("ranking"))
    assert old["model"]["gap"]["gamma"] == 0.0 and rundir.params_hash(old) == rundir.params_hash(params)
    model = build_detector(params["model"], 5)
    weights = {k.replace("roi_heads.ranking.", "roi_heads.gap."): v for k, v in model.state_dict().items()}
    assert "roi_heads.gap.class_counts" in weights
    path = checkpoint.save(tmp_path / "old.pt", {"signature": model.signature, "params": old, "iteration": 0,
                                                 "model": weights})
    state = checkpoint.load(path)
    assert state["params"]["model"]["ranking"] == {"name": "gap", "weight": 1.0, "params": {"gamma": 0.0}}
    assert "gap" not in state["params"]["model"]
    build_detector(state["params"]["model"], 5).load_state_dict(state["model"])  # strict: every key matches


def test_predicted_box_ious_equal_pairwise_iou():
    coder = det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0))
    g = torch.Generator().manual_seed(0)
    num_classes = 3
    proposals = [torch.tensor([[10.0, 10, 40, 50], [0, 0, 20, 20], [30, 5, 60, 25]]),
                 torch.tensor([[5.0, 5, 25, 35], [50, 50, 90, 80]])]
    gt = [torch.tensor([[12.0, 8, 42, 48], [28, 4, 58, 30]]), torch.tensor([[50.0, 45, 85, 80]])]
    matched = [torch.tensor([0, -1, 1]), torch.tensor([-1, 0])]
    labels = torch.tensor([2, 3, 0, 3, 1])  # 3 = background
    deltas = torch.randn(5, num_classes * 4, generator=g) * 0.1
    ious = predicted_box_ious(coder, deltas, labels, proposals, matched, gt, num_classes)
    flat_props, flat_gt = torch.cat(proposals), [gt[0][0], None, gt[0][1], None, gt[1][0]]
    for r in range(5):
        if labels[r] == num_classes:
            assert ious[r] == 0
            continue
        box = coder.decode_single(deltas[r:r + 1, labels[r] * 4:labels[r] * 4 + 4], flat_props[r:r + 1])
        torch.testing.assert_close(ious[r], box_iou(box, flat_gt[r][None])[0, 0])


@pytest.mark.parametrize("loss", ["ap_loss", "rs_loss"])
def test_detector_trains_with_a_category_agnostic_ranking_loss_alone(loss):
    torch.manual_seed(0)
    c = 5
    model = build_detector(model_params("model.objective.name=none", f"model.ranking.name={loss}"), c)
    assert isinstance(model.roi_heads.ranking, APLoss if loss == "ap_loss" else RSLoss)
    images, targets = random_batch(num_classes=c)
    model.train()
    losses = model(images, targets)
    assert "loss_cls" not in losses and losses["loss_gap"] > 0
    sum(losses.values()).backward()
    assert classifier(model).weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert all(len(det["boxes"]) <= 20 for det in model(images))
