"""Run records: what one scored checkpoint wrote, its summary rows and comparisons between runs."""
