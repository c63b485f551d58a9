"""Restock plans: which machines each van visits, in what order, what it loads."""
