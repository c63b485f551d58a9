"""The weekly situation report: nx-backend report weekly."""
