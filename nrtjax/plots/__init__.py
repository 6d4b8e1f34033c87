"""nrtjax.plots (see DESIGN.md section 2)."""
