"""The compendium's orchestration: the registry in params.yaml, dvc.yaml generation, the experiment and
post-hoc stages (`rog train` / `rog evaluate` launched and recorded), the parallel runner and subsets."""
