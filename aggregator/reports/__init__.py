"""The daily report: what is held at the end of a day, what changed, and whether to trust it."""
