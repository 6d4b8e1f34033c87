"""nrtjax.audio (see DESIGN.md section 2)."""
