"""nxlink: typed messages and the link state machine on top of the frame codec (pure code)."""
