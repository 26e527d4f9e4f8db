"""Pre-training around the network: the dataset builder and writer, the input pipeline, the
estimator model_fn and training loop, and the distribution strategies (model/ is the network)."""
