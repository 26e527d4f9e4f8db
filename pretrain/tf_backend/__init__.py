"""The TF backend's Estimator plumbing. The backend-neutral checks, logs and guards it feeds
live one level up in pretrain/ and import no TensorFlow."""
