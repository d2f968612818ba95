"""kubelite provisioning."""
