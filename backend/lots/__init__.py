"""Naloxone lots in the machines: first-expiry-first-out accounting, expiry and heat."""
