"""kubelite store."""
