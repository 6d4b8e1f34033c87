"""nrtjax.fit (see DESIGN.md section 2)."""
