"""Box-classification objectives and ranking losses."""
from rog.losses.gap import GAPLoss
from rog.losses.ranking import APLoss, RSLoss

__all__ = ["GAPLoss", "APLoss", "RSLoss"]
