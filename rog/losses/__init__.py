"""Box-classification objectives and ranking losses."""
from rog.losses.gap import GAPLoss
from rog.losses.ranking import APLoss, RSLoss
from rog.losses.objectives import OBJECTIVES, NorCal, build_objective

__all__ = ["GAPLoss", "APLoss", "RSLoss", "OBJECTIVES", "NorCal", "build_objective"]
