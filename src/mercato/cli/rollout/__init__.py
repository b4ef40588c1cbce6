"""Release analysis: is the canary as healthy as the stable pods? (``mercato rollout``)."""
