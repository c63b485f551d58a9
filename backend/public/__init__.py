"""The public locator feed: where naloxone can be had now, and nothing else (docs/security.md)."""
