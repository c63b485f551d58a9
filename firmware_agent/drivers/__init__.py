"""Controller drivers: one per kind of vending controller, behind one interface."""
