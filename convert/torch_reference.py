"""The torch backend's own network as the reference a conversion from a torch checkpoint is checked against.

The counterpart of ``tf_reference`` for ``torch_checkpoints/step-<N>.pt``: the discriminator and
generator modules of pretrain/torch_backend/model.py (SDPA attention, the -10000 padding adder,
erf GELU), sized from the conversion's Architecture and holding the checkpoint's weights as
training left them. The written transformers models must give their logits; agreement proves
the name table and the transposes between the two PyTorch layouts. No TensorFlow.
"""
import torch

from configure_pretraining import BertConfig


class TorchReference:
    """Discriminator and generator logits of a torch checkpoint, computed by the torch backend's modules."""

    name = "torch backend"  # what the parity lines call this side
    compared = "transformers"  # and the converted models

    def __init__(self, model_state, arch):
        from pretrain.torch_backend.model import Discriminator, ElectraEncoder, Generator

        self.arch = arch
        self.discriminator = Discriminator(BertConfig.from_dict(arch.discriminator))
        _load(self.discriminator, model_state, "discriminator.")
        self.generator = None
        if arch.generator is not None:
            cfg = BertConfig.from_dict(arch.generator)
            # An encoder of its own: the shared embeddings arrive under the generator.* keys too.
            self.generator = Generator(cfg, ElectraEncoder(cfg))
            _load(self.generator, model_state, "generator.")

    def discriminator_logits(self, input_ids, input_mask, token_type_ids):
        """[B, T] replaced-token logits."""
        with torch.no_grad():
            return self.discriminator(*_tensors(input_ids, input_mask, token_type_ids)).numpy()

    def generator_logits(self, input_ids, input_mask, token_type_ids):
        """[B, T, V] MLM logits at every position (training scores only the masked ones)."""
        g = self.generator
        with torch.no_grad():
            hidden = g.electra(*_tensors(input_ids, input_mask, token_type_ids))
            return g.generator_lm_head(g.generator_predictions(hidden)).float().numpy()


def _tensors(*arrays):
    return [torch.from_numpy(a).long() for a in arrays]


def _load(module, model_state, prefix):
    state = {key[len(prefix):]: value for key, value in model_state.items() if key.startswith(prefix)}
    # strict: the network built from the Architecture must take every weight the checkpoint has.
    module.load_state_dict(state, strict=True)
    module.eval()
