"""What a search leaves: its rows, the leaderboard parquet, the per-layout view and the summary."""
