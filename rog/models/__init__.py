"""Detectors: backbones, the RoI head with a pluggable objective, the builder."""
