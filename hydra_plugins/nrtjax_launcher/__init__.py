"""nrtjax's Hydra launcher plugin (found by Hydra's scan of the `hydra_plugins` namespace)."""
