"""Reports over run records: leaderboards (CSV, Markdown, PNG), the regression check, known answers."""
