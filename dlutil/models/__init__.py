"""Predefined networks and ready models, each an ordinary ``nn.Module`` or ``BaseModel`` subclass."""
