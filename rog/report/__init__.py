"""The compendium: the registry in params.yaml, dvc.yaml, and the tables and figures of the paper
from the runs' metrics files (with the paper's numbers beside ours)."""
