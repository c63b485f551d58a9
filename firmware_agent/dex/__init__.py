"""DEX/UCS support: the EVA-DTS audit parser, counter deltas and the UCS link layer."""
