"""nrtjax's Hydra launcher plugin (found by Hydra's plugin scan of the `hydra_plugins` namespace)."""
