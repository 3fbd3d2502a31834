"""Box-classification objectives and ranking losses; `CategoryCounts` is the class-count type they all take.

Importing this package needs torch alone: no dataset code, no detector, no image library.
"""
from rog.losses.counts import CategoryCounts
from rog.losses.gap import GAPLoss
from rog.losses.ranking import APLoss, RSLoss
from rog.losses.objectives import OBJECTIVES, NorCal, build_objective
from rog.losses.ranking_terms import RANKING_TERMS, build_ranking

__all__ = ["CategoryCounts", "GAPLoss", "APLoss", "RSLoss", "OBJECTIVES", "NorCal", "build_objective",
           "RANKING_TERMS", "build_ranking"]
