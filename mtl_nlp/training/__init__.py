"""Training: the Accelerate loop, its optimizer and schedule, the run's history, and the ``train`` entry point."""
