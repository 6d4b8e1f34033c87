"""nrtjax.video (see DESIGN.md section 2)."""
