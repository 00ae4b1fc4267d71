"""Road-state benchmark: every incident detector and the LOS estimate on one simulated suite (#14)."""
