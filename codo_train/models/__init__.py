"""The models: a detector-aligned ResNet-FPN encoder (encoder.py), CoDo's with BYOL heads and a momentum
target (codo.py), the supervised control's RoI classifier (supervised.py), and ModelConfig (config.py), all
a model is built from."""
