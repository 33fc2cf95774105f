"""Scoring predictions and writing the reports people and programs read."""
