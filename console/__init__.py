"""NaloxNet console."""
