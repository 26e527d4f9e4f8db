"""TF ELECTRA checkpoints <-> transformers directories, and ONNX files, with parity checks.

``pipeline`` runs one conversion end to end; ``checkpoint`` reads a model directory (or
checkpoint prefix) and decides every size and variable name; ``to_transformers`` maps the
variables onto ElectraForPreTraining / ElectraForMaskedLM and writes the directories;
``tf_reference`` is an independent TF forward pass of the upstream architecture; ``parity``
compares the three runtimes; ``onnx_export`` / ``onnx_inference`` export and run ONNX files.
The reverse direction: ``hf_directory`` reads and checks a transformers ELECTRA directory and
``to_tf`` writes it as an upstream-named TF checkpoint through ``to_transformers``' name table.
The PyTorch backend's model directories: ``checkpoint.open_checkpoint`` reads a torch checkpoint
into the same names (then the same pipeline, checked against ``torch_reference``, the torch
backend's own network), and ``torch_tf`` turns one backend's model directory into one the other
backend resumes at the same step.
"""
