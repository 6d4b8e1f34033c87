"""Hydra entry points: `nrtjax NAME key=value ...` runs `experiments/NAME.py`."""
