"""Named areas: load neighbourhood polygons and place machines in them."""
