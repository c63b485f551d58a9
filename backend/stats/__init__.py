"""Dispense statistics for officials: counts over time, and safe exports of them."""
