"""nrtjax.surrogate (see DESIGN.md section 2)."""
