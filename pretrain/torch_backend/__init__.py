"""The PyTorch pretraining backend: the network (model.py), its masking (masking.py) and upstream's
optimizer (optim.py), equal to the TF graph in model/ on a fixed batch (experiments/parity_step.py)."""
