"""Alert notifications: the outbox written with each alert change, and its dispatcher."""
