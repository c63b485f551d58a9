"""NaloxNet backend."""
