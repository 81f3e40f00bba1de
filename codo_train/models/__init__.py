"""The CoDo model: a detector-aligned ResNet-FPN encoder with BYOL heads and a momentum target."""
