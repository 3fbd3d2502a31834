import sys
from pathlib import Path

import torch

# tests import their oracles (tests/*_oracles.py) as plain modules
sys.path.insert(0, str(Path(__file__).parent))
# two cores shared by the whole suite: one thread avoids oversubscription and keeps runs reproducible
torch.set_num_threads(1)
