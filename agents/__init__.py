"""kubelite agents."""
