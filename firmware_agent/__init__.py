"""NaloxNet firmware_agent."""
