"""Box-classification objectives against oracles written from their formulas (peers.md sections 2-6, 9).

Each oracle below is plain loop code over a few RoIs and classes, in float64, written from the
formula and not from the implementation; value, gradient (autograd through the oracle) and scores
are compared.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from rog.losses.counts import CategoryCounts
from rog.losses import GAPLoss
from rog.losses.objectives import OBJECTIVES, NorCal, NormedLinear, build_objective, objective_params

C = 4
BG = C
LABELS = torch.tensor([0, 1, 2, 3, BG, BG, 0, 2, BG])
# image frequencies 0.2, 0.03, 0.005, 0.001 of 1000 images
COUNTS = CategoryCounts(instance_count=torch.tensor([400, 60, 9, 2]), image_count=torch.tensor([200, 30, 5, 1]),
                        num_images=1000, frequency=("f", "c", "r", "r"))


def make_logits(columns: int, rows: int = len(LABELS), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(rows, columns, generator=g, dtype=torch.float64)).requires_grad_()


def sig(x):
    return 1 / (1 + torch.exp(-x))


def bce(z, t):
    """-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))], one entry."""
    return -(t * torch.log(sig(z)) + (1 - t) * torch.log(1 - sig(z)))


def total(terms: dict) -> torch.Tensor:
    return sum(terms.values())


def assert_matches(objective, logits, labels, oracle_loss, oracle_scores=None):
    """Loss value and gradient of `objective` equal the oracle's, and so do the scores."""
    value = total(objective.loss(logits, labels))
    (grad,) = torch.autograd.grad(value, logits)
    expected = oracle_loss(logits, labels)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-12)
    if oracle_scores is not None:
        torch.testing.assert_close(objective.scores(logits.detach()), oracle_scores(logits.detach()))


def objectness_oracle_scores(z):
    return torch.stack([torch.stack([sig(z[i, c]) * (1 - sig(z[i, C])) for c in range(C)])
                        for i in range(z.shape[0])])


# ---- cross entropy ----------------------------------------------------------------------------------
def test_sigmoid_ce_matches_oracle():
    def oracle(z, y):
        R = z.shape[0]
        return sum(bce(z[i, j], float(y[i] == j)) for i in range(R) for j in range(C + 1)) / R

    assert_matches(build_objective("sigmoid_ce", C), make_logits(C + 1), LABELS, oracle, objectness_oracle_scores)


def test_softmax_ce_matches_oracle():
    def oracle(z, y):
        R = z.shape[0]
        return sum(-z[i, y[i]] + torch.log(sum(torch.exp(z[i, j]) for j in range(C + 1))) for i in range(R)) / R

    def scores(z):
        e = torch.exp(z)
        return e[:, :C] / e.sum(1, keepdim=True)

    assert_matches(build_objective("softmax_ce", C), make_logits(C + 1), LABELS, oracle, scores)


def test_loss_weight_scales_every_term():
    z = make_logits(C + 2)
    plain = build_objective("seesaw", C).loss(z, LABELS)
    heavy = build_objective("seesaw", C, loss_weight=2.5).loss(z, LABELS)
    for key in plain:
        torch.testing.assert_close(heavy[key], 2.5 * plain[key])


# ---- EQL ----------------------------------------------------------------------------------------------
def test_eql_matches_oracle_and_drops_tail_negatives_on_foreground_only():
    lam = 0.01  # tail: classes 2 and 3 (frequencies 0.005, 0.001)
    tail = [COUNTS.image_count[j] / COUNTS.num_images < lam for j in range(C)]
    assert tail == [False, False, True, True]

    def oracle(z, y):
        R, out = z.shape[0], 0
        for i in range(R):
            for j in range(C):
                t = float(y[i] == j)
                w = 1 - float(y[i] < C) * float(tail[j]) * (1 - t)
                out = out + w * bce(z[i, j], t)
        return out / R

    objective = build_objective("eql", C, COUNTS, lambda_=lam)
    z = make_logits(C)
    assert_matches(objective, z, LABELS, oracle, lambda z: sig(z))
    (grad,) = torch.autograd.grad(total(objective.loss(z, LABELS)), z)
    assert grad[0, 3] == 0 and grad[0, 2] == 0 and grad[0, 1] != 0     # foreground RoI of class 0
    assert grad[4, 3] != 0                                               # background RoI keeps all


def test_eql_default_lambda_is_lvis_v1_config():
    assert objective_params("eql")["lambda_"] == 0.0011
    assert build_objective("eql", C, COUNTS).tail.tolist() == [False, False, False, True]


# ---- EQLv2 ----------------------------------------------------------------------------------------------
class EQLv2Oracle:
    """EQLv2 from its formulas, with plain-Python statistics."""

    def __init__(self, gamma=12.0, mu=0.8, alpha=4.0):
        self.gamma, self.mu, self.alpha = gamma, mu, alpha
        self.pos = [0.0] * C
        self.neg = [0.0] * C
        self.ratio = [100.0] * C

    def weights(self):
        q = [1 / (1 + math.exp(-self.gamma * (g - self.mu))) for g in self.ratio] + [1.0]
        r = [1 + self.alpha * (1 - qj) for qj in q[:C]] + [1.0]
        return r, q

    def loss(self, z, y):
        r, q = self.weights()
        R, out = z.shape[0], 0
        for i in range(R):
            for j in range(C + 1):
                t = float(y[i] == j)
                out = out + (r[j] * t + q[j] * (1 - t)) * bce(z[i, j], t)
        return out / R

    def update(self, z, y):
        r, q = self.weights()
        for i in range(z.shape[0]):
            for j in range(C):
                p = 1 / (1 + math.exp(-float(z[i, j])))
                if y[i] == j:
                    self.pos[j] += r[j] * (1 - p)
                else:
                    self.neg[j] += q[j] * p
        self.ratio = [self.pos[j] / (self.neg[j] + 1e-10) for j in range(C)]


def test_eqlv2_matches_oracle_over_several_steps():
    objective = build_objective("eqlv2", C)
    oracle = EQLv2Oracle()
    for step in range(4):
        z = make_logits(C + 1, seed=step)
        assert_matches(objective, z, LABELS, oracle.loss, objectness_oracle_scores)  # loss() updates once
        oracle.update(z.detach(), LABELS)
        torch.testing.assert_close(objective.pos_grad, torch.tensor(oracle.pos, dtype=torch.float64))
        torch.testing.assert_close(objective.neg_grad, torch.tensor(oracle.neg, dtype=torch.float64))
        torch.testing.assert_close(objective.pos_neg, torch.tensor(oracle.ratio, dtype=torch.float64))
    assert not torch.allclose(objective.class_weights()[1][:C], torch.ones(C, dtype=torch.float64))


def test_eqlv2_first_step_is_plain_sigmoid_ce():
    z = make_logits(C + 1)
    torch.testing.assert_close(total(build_objective("eqlv2", C).loss(z, LABELS)),
                               total(build_objective("sigmoid_ce", C).loss(z, LABELS)))


def test_eqlv2_statistics_frozen_in_eval_and_without_obj_scores():
    objective = build_objective("eqlv2", C, test_with_obj=False).eval()
    z = make_logits(C + 1)
    objective.loss(z, LABELS)
    assert objective.pos_grad.sum() == 0 and (objective.pos_neg == 100).all()
    torch.testing.assert_close(objective.scores(z.detach()), sig(z.detach()[:, :C]))


# ---- Seesaw -------------------------------------------------------------------------------------------
class SeesawOracle:
    """sigma_hat_i = e^{z_i} / (e^{z_i} + sum_{j != i} S_ij e^{z_j}), S = mitigation x compensation."""

    def __init__(self, p=0.8, q=2.0, eps=1e-2):
        self.p, self.q, self.eps = p, q, eps
        self.counts = [0] * (C + 1)

    def loss(self, z, y):
        R = z.shape[0]
        for label in y.tolist():                     # counts include the current batch
            self.counts[label] += 1
        objectness, classes = 0, 0
        for i in range(R):
            fg = int(y[i]) < C
            e_fg, e_bg = torch.exp(z[i, C]), torch.exp(z[i, C + 1])
            objectness = objectness - torch.log((e_fg if fg else e_bg) / (e_fg + e_bg))
            if not fg:
                continue
            k = int(y[i])
            soft = [math.exp(float(z[i, j].detach())) for j in range(C)]
            soft = [s / sum(soft) for s in soft]     # detached class softmax
            denominator = torch.exp(z[i, k])
            for j in range(C):
                if j == k:
                    continue
                n_j, n_k = max(self.counts[j], 1), max(self.counts[k], 1)
                mitigation = (n_j / n_k) ** self.p if n_j < n_k else 1.0
                ratio = soft[j] / max(soft[k], self.eps)
                compensation = ratio ** self.q if ratio > 1 else 1.0
                denominator = denominator + mitigation * compensation * torch.exp(z[i, j])
            classes = classes - torch.log(torch.exp(z[i, k]) / denominator)
        return objectness / R + classes / R


def seesaw_scores(z):
    e = torch.exp(z)
    return e[:, :C] / e[:, :C].sum(1, keepdim=True) * e[:, C:C + 1] / e[:, C:].sum(1, keepdim=True)


def test_seesaw_matches_oracle_over_several_steps():
    objective = build_objective("seesaw", C)
    oracle = SeesawOracle()
    batches = [LABELS, torch.tensor([0, 0, 0, 1, BG, 2, 0, 0, 1]), torch.tensor([3, 0, 1, 1, BG, BG, 0, 2, 0])]
    for step, labels in enumerate(batches):
        z = make_logits(C + 2, seed=10 + step)
        z = z.detach().mul(3).requires_grad_()      # larger logits make the compensation factor fire
        assert_matches(objective, z, labels, oracle.loss, seesaw_scores)
        assert objective.cum_samples.tolist() == oracle.counts
    assert objective.cum_samples.tolist() == [10, 5, 4, 2, 6]
    # both factors are active on these batches, so the comparison above exercised them
    fg = labels < C
    mitigation_only = build_objective("seesaw", C, q=0.0)
    mitigation_only.load_state_dict(objective.state_dict())
    assert mitigation_only.log_seesaw_factors(z[fg, :C], labels[fg]).abs().sum() > 0
    assert build_objective("seesaw", C, p=0.0).log_seesaw_factors(z[fg, :C], labels[fg]).abs().sum() > 0


def test_seesaw_terms_are_named_and_normalised_by_all_rois():
    objective = build_objective("seesaw", C, p=0.0, q=0.0)  # plain softmax CE over classes
    z = make_logits(C + 2)
    terms = objective.loss(z, LABELS)
    assert set(terms) == {"loss_cls_objectness", "loss_cls_classes"}
    fg = LABELS < C
    expected = torch.nn.functional.cross_entropy(z[fg, :C], LABELS[fg], reduction="sum") / len(LABELS)
    torch.testing.assert_close(terms["loss_cls_classes"], expected)


# ---- ECM ----------------------------------------------------------------------------------------------
def test_ecm_matches_oracle_with_margins_from_instance_counts():
    n = [float(v) for v in COUNTS.instance_count] + [6.3313 * float(COUNTS.instance_count.sum())]
    total_n = sum(n)

    def oracle(z, y):
        R, out = z.shape[0], 0
        for c in range(C + 1):
            n_pos, n_neg = n[c], total_n - n[c]
            m_pos = math.log((n_pos ** 0.25 + n_neg ** 0.25) / n_neg ** 0.25)
            m_neg = math.log((n_pos ** 0.25 + n_neg ** 0.25) / n_pos ** 0.25)
            a = n_neg / n_pos
            w = a * math.log((1 + a) / a)
            for i in range(R):
                up, down = torch.exp(z[i, c] + m_pos), torch.exp(-z[i, c] + m_neg)
                p = up / (up + down)
                t = float(y[i] == c)
                out = out - w * (t * torch.log(p) + (1 - t) * torch.log(1 - p))
        return out / R

    objective = build_objective("ecm", C, COUNTS)
    assert objective.normed_linear and objective.num_outputs == C + 1
    # scores use the raw logit: no x2, no margin
    assert_matches(objective, make_logits(C + 1), LABELS, oracle, objectness_oracle_scores)


# ---- GOL ----------------------------------------------------------------------------------------------
def gol_oracle(lam, seed):
    tail = [COUNTS.image_count[j] / COUNTS.num_images < lam for j in range(C)]

    def oracle(z, y):
        R = z.shape[0]
        u = torch.rand((R, C), generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
        fg_labels = [int(v) for v in y if v < C]
        ratio = sum(tail[v] for v in fg_labels) / len(fg_labels) if fg_labels else None
        out = 0
        for i in range(R):
            for j in range(C):
                t = float(y[i] == j)
                keep = 1.0
                if tail[j] and t == 0:
                    if y[i] < C:
                        keep = 0.0
                    elif ratio is not None and u[i, j] > ratio:
                        keep = 0.0
                x = min(max(z[i, j], torch.tensor(-4.0)), torch.tensor(10.0))  # min/max keep autograd
                p = torch.exp(-torch.exp(-x))
                out = out - keep * (t * torch.log(p) + (1 - t) * torch.log(1 - p))
        return out / R

    return oracle


@pytest.mark.parametrize("labels", [LABELS, torch.tensor([BG, BG, BG, BG, BG, BG, BG, BG, BG])],
                         ids=["mixed", "no_foreground"])
def test_gol_matches_oracle_with_seeded_drop(labels):
    lam = 0.01
    objective = build_objective("gol", C, COUNTS, lambda_=lam, generator=torch.Generator().manual_seed(7))
    z = make_logits(C, seed=3)
    z = z.detach().mul(3).requires_grad_()            # some logits beyond the [-4, 10] clamp
    value = total(objective.loss(z, labels))
    (grad,) = torch.autograd.grad(value, z)
    expected = gol_oracle(lam, seed=7)(z, labels)
    (expected_grad,) = torch.autograd.grad(expected, z)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)
    torch.testing.assert_close(objective.scores(z.detach()), torch.exp(-torch.exp(-z.detach())))


def test_gol_drop_is_seeded_by_the_global_rng_and_keeps_the_tail_ratio():
    objective = build_objective("gol", C, COUNTS, lambda_=0.01)
    labels = torch.cat([torch.tensor([0, 2, 3, 1]), torch.full((4000,), BG)])   # tail ratio 2/4
    targets = torch.nn.functional.one_hot(labels, C + 1)[:, :C].double()
    torch.manual_seed(1)
    first = objective.drop_weights(labels, targets)
    torch.manual_seed(1)
    assert torch.equal(first, objective.drop_weights(labels, targets))
    background = first[4:]
    assert (background[:, :2] == 1).all()                                   # non-tail classes kept
    assert abs(background[:, 2:].mean().item() - 0.5) < 0.03                # tail kept w.p. ratio


def test_gol_classifier_init():
    layer = build_objective("gol", C, COUNTS).make_classifier(6)
    assert torch.all(layer.weight == 0.001) and torch.all(layer.bias == -2.0) and layer.out_features == C


# ---- federated ------------------------------------------------------------------------------------------
def fed_counts(image_count):
    return CategoryCounts(torch.ones(len(image_count), dtype=torch.long), torch.tensor(image_count), 100,
                          ("r",) * len(image_count))


def test_federated_matches_oracle_on_a_forced_class_subset():
    # Only classes 2 and 4 can be drawn (zero image count elsewhere); labels {0, 1, bg} fill 3 of 5 slots.
    counts = fed_counts([0, 0, 5, 0, 7, 0])
    labels = torch.tensor([0, 1, 6, 6, 0, 6])
    objective = build_objective("federated", 6, counts, num_fed_classes=5)
    chosen = {0, 1, 2, 4}

    def oracle(z, y):
        R = z.shape[0]
        return sum(bce(z[i, j], float(y[i] == j)) for i in range(R) for j in chosen) / R

    z = make_logits(7, rows=6)
    assert_matches(objective, z, labels, oracle, lambda z: sig(z[:, :6]))
    (grad,) = torch.autograd.grad(total(objective.loss(z, labels)), z)
    assert (grad[:, 6] == 0).all() and (grad[:, [3, 5]] == 0).all()      # background column untrained


def test_federated_background_label_takes_a_slot_and_draws_follow_sqrt_image_count():
    counts = fed_counts([1000, 1, 4, 16, 64])
    objective = build_objective("federated", 5, counts, num_fed_classes=3,
                                generator=torch.Generator().manual_seed(0))
    assert objective.fed_classes(torch.tensor([0])).sum() == 3             # 2 drawn
    assert objective.fed_classes(torch.tensor([0, 5])).sum() == 2          # background counts: 1 drawn
    hits = torch.zeros(5)
    for _ in range(3000):
        hits += objective.fed_classes(torch.tensor([0, 5])).double()
    share = hits[1:] / hits[1:].sum()
    torch.testing.assert_close(share, torch.tensor([1.0, 2.0, 4.0, 8.0]) / 15, atol=0.03, rtol=0)


# ---- NorCal ---------------------------------------------------------------------------------------------
def test_norcal_softmax_matches_oracle():
    gamma = 0.7
    n = COUNTS.image_count.tolist()

    def oracle(z):
        rows = []
        for i in range(z.shape[0]):
            s = [math.exp(float(z[i, c])) / n[c] ** gamma for c in range(C)]
            denominator = sum(s) + math.exp(float(z[i, C]))      # background exp left as it is
            rows.append([v / denominator for v in s])
        return torch.tensor(rows, dtype=torch.float64)

    def unnormalised(z):
        e = torch.exp(z)
        return e[:, :C] / e.sum(1, keepdim=True) / torch.tensor(n, dtype=torch.float64) ** gamma

    z = make_logits(C + 1).detach()
    calibrated = build_objective("norcal", C, COUNTS, gamma=gamma)
    torch.testing.assert_close(calibrated.scores(z), oracle(z))
    torch.testing.assert_close(build_objective("norcal", C, COUNTS, gamma=gamma, renormalize=False).scores(z),
                               unnormalised(z))
    torch.testing.assert_close(build_objective("norcal", C, COUNTS).scores(z),     # default gamma 0: identity
                               build_objective("softmax_ce", C).scores(z))
    torch.testing.assert_close(total(calibrated.loss(z, LABELS)),                  # training unchanged
                               total(build_objective("softmax_ce", C).loss(z, LABELS)))
    assert calibrated.scores(z)[:, 3].sum() > build_objective("softmax_ce", C).scores(z)[:, 3].sum()


def test_norcal_sigmoid_adaptation_shifts_logits_before_the_sigmoid():
    gamma = 0.5
    n = COUNTS.image_count.tolist()
    z = make_logits(C + 1).detach()
    expected = torch.tensor([[sig(z[i, c] - gamma * math.log(n[c])) * (1 - sig(z[i, C])) for c in range(C)]
                             for i in range(z.shape[0])], dtype=torch.float64)
    wrapped = NorCal(build_objective("sigmoid_ce", C), COUNTS, gamma=gamma)
    torch.testing.assert_close(wrapped.scores(z), expected)
    assert wrapped.num_outputs == C + 1


# ---- statistics in the state_dict -----------------------------------------------------------------------
@pytest.mark.parametrize("name, buffers", [("eqlv2", ["pos_grad", "neg_grad", "pos_neg"]),
                                           ("seesaw", ["cum_samples"])])
def test_state_dict_round_trip_restores_statistics(name, buffers):
    trained = build_objective(name, C)
    for step in range(3):
        trained.loss(make_logits(trained.num_outputs, seed=step), LABELS)
    state = trained.state_dict()
    assert set(buffers) <= set(state)
    fresh = build_objective(name, C)
    assert any(not torch.equal(getattr(fresh, b), state[b]) for b in buffers)
    fresh.load_state_dict(state)
    for b in buffers:
        assert torch.equal(getattr(fresh, b), state[b])
    z = make_logits(trained.num_outputs, seed=9)
    torch.testing.assert_close(total(fresh.loss(z, LABELS)), total(trained.loss(z, LABELS)))


# ---- classifier ------------------------------------------------------------------------------------------
def test_classifier_init_and_normed_linear():
    sigmoid = build_objective("sigmoid_ce", C).make_classifier(8)
    assert type(sigmoid) is torch.nn.Linear and torch.allclose(sigmoid.bias, torch.full((C + 1,), -math.log(99)))
    eqlv2 = build_objective("eqlv2", C).make_classifier(8)
    assert torch.allclose(eqlv2.bias, torch.full((C + 1,), -math.log(999)))
    seesaw = build_objective("seesaw", C).make_classifier(8)
    assert isinstance(seesaw, NormedLinear) and seesaw.temperature == 20 and (seesaw.bias == 0).all()
    assert seesaw.out_features == C + 2
    assert isinstance(build_objective("sigmoid_ce", C, normed_linear=True).make_classifier(8), NormedLinear)

    x = torch.randn(5, 8, dtype=torch.float64)
    layer = NormedLinear(8, 3, temperature=20).double()
    torch.nn.init.normal_(layer.bias)
    eps = 1e-6
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = torch.tensor([[20 * float(x[i] @ w[k]) / ((float(x[i].norm()) + eps) * (float(w[k].norm()) + eps))
                              + float(b[k]) for k in range(3)] for i in range(5)], dtype=torch.float64)
    torch.testing.assert_close(layer(x), expected)


def test_defaults_are_the_lvis_values_of_the_reference_code():
    assert {k: objective_params("eqlv2")[k] for k in ("gamma", "mu", "alpha", "init_pos_neg")} == \
        {"gamma": 12.0, "mu": 0.8, "alpha": 4.0, "init_pos_neg": 100.0}
    assert {k: objective_params("seesaw")[k] for k in ("p", "q", "eps", "normed_linear", "temperature")} == \
        {"p": 0.8, "q": 2.0, "eps": 1e-2, "normed_linear": True, "temperature": 20.0}
    assert objective_params("ecm")["fg_bg_ratio"] == 6.3313 and objective_params("ecm")["normed_linear"]
    assert objective_params("gol")["lambda_"] == 0.0011
    assert {k: objective_params("federated")[k] for k in ("num_fed_classes", "freq_weight_power")} == \
        {"num_fed_classes": 50, "freq_weight_power": 0.5}
    outputs = {name: build_objective(name, C, COUNTS).num_outputs - C for name in OBJECTIVES}
    assert outputs == {"sigmoid_ce": 1, "softmax_ce": 1, "eql": 0, "eqlv2": 1, "seesaw": 2, "ecm": 1,
                       "gol": 0, "federated": 1, "norcal": 1, "none": 0}


# ---- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_bad_input_names_the_objective_and_the_problem(name):
    """The message starts with the objective's name (NorCal's adds the wrapped objective's)."""
    objective = build_objective(name, C, COUNTS)
    K = objective.num_outputs
    with pytest.raises(ValueError, match=rf"{name}.*{K + 1} columns, expected {K}"):
        objective.loss(torch.zeros(3, K + 1), torch.tensor([0, 1, BG]))
    with pytest.raises(ValueError, match=rf"{name}.*{K - 1} columns"):
        objective.loss(torch.zeros(3, K - 1), torch.tensor([0, 1, BG]))
    with pytest.raises(ValueError, match=rf"{name}.*columns"):
        objective.scores(torch.zeros(3, K + 1))
    for bad in (C + 1, -1):
        with pytest.raises(ValueError, match=rf"{name}.*labels must lie in 0\.\.{C}"):
            objective.loss(torch.zeros(3, K), torch.tensor([0, bad, BG]))


@pytest.mark.parametrize("name", ["eql", "ecm", "gol", "federated", "norcal"])
def test_missing_or_mismatched_counts_raise(name):
    with pytest.raises(ValueError, match=rf"{name}: needs class_counts"):
        build_objective(name, C)
    with pytest.raises(ValueError, match=rf"{name}: class_counts cover {C} classes, expected {C + 1}"):
        build_objective(name, C + 1, COUNTS)


def test_unknown_name_and_param():
    with pytest.raises(ValueError, match="unknown objective 'focal'; valid: ecm, eql, eqlv2, federated, gol"):
        build_objective("focal", C)
    with pytest.raises(ValueError, match=r"eqlv2: unknown parameter\(s\) 'gama'"):
        build_objective("eqlv2", C, gama=10)


# ---- GAP composes with every objective ---------------------------------------------------------------------
WITH_TERMS = sorted(set(OBJECTIVES) - {"none"})  # "none" has no object-level term, tested below


@pytest.mark.parametrize("name", WITH_TERMS)
def test_gap_uses_only_foreground_columns_and_leaves_objective_terms_alone(name):
    def make():
        seeded = {"generator": torch.Generator().manual_seed(0)} if name in ("gol", "federated") else {}
        return build_objective(name, C, COUNTS, **seeded)

    objective, alone = make(), make()
    gap = GAPLoss(C)
    joint_gap = copy.deepcopy(gap)                           # GAP's online counts change on each call
    z = make_logits(objective.num_outputs, seed=5)

    gap_value = gap(z, LABELS)
    (gap_grad,) = torch.autograd.grad(gap_value, z)
    assert gap_value > 0 and gap_grad[:, :C].abs().sum() > 0
    assert (gap_grad[:, C:] == 0).all()
    shifted = z.detach().clone()
    shifted[:, C:] += 5.0                                    # extra columns cannot change the GAP value
    torch.testing.assert_close(GAPLoss(C)(shifted, LABELS), GAPLoss(C)(z.detach(), LABELS))

    terms = objective.loss(z, LABELS)                        # with GAP computed on the same logits
    (joint_grad,) = torch.autograd.grad(total(terms) + joint_gap(z, LABELS), z)
    reference = alone.loss(z, LABELS)
    assert terms.keys() == reference.keys()
    for key in terms:
        torch.testing.assert_close(terms[key], reference[key])
    (objective_grad,) = torch.autograd.grad(total(reference), z)
    torch.testing.assert_close(joint_grad, objective_grad + gap_grad)


@pytest.mark.parametrize("name", WITH_TERMS)
def test_empty_and_background_only_batches_are_finite(name):
    objective = build_objective(name, C, COUNTS)
    empty = torch.zeros(0, objective.num_outputs, requires_grad=True)
    value = total(objective.loss(empty, torch.zeros(0, dtype=torch.long)))
    value.backward()
    assert value.item() == 0 and empty.grad.shape == empty.shape
    z = make_logits(objective.num_outputs)
    value = total(objective.loss(z, torch.full((len(LABELS),), BG)))
    (grad,) = torch.autograd.grad(value, z)
    assert torch.isfinite(value) and value > 0 and torch.isfinite(grad).all()
    assert objective.scores(z.detach()).shape == (len(LABELS), C)


def test_ranking_only_has_no_term_and_sigmoid_scores():
    """Table 2's "N/A" rows: the ranking loss is the whole classification gradient."""
    objective = build_objective("none", C)
    z = make_logits(C, seed=3)
    assert objective.loss(z, LABELS) == {}
    torch.testing.assert_close(objective.scores(z.detach()), torch.sigmoid(z.detach()))
    layer = objective.make_classifier(8)
    torch.testing.assert_close(layer.bias, torch.full((C,), -math.log(99.0)))
