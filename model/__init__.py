"""The TensorFlow ELECTRA network: BERT encoder, generator and discriminator, masking and
sampling, and the optimizer. The data and the training loop around it live in pretrain/."""
