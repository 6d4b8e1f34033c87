"""nrtjax.plots: the figures the jobs draw, one function per figure."""
