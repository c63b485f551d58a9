"""NaloxNet simulators."""
