"""nrtjax.eeg (see DESIGN.md section 2)."""
