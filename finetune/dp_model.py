"""A dependency-parsing head on an ELECTRA encoder: biaffine arcs, bilinear relations.

Word representations, as KLUE-baseline builds them (``resize_outputs``): the encoder's last
hidden state at the word's first sub-token concatenated with the one at its last sub-token;
the root is [CLS] concatenated with itself. The positions come in as index tensors
(``word_starts``/``word_ends``, [batch, 1 + words], entry 0 the root at token 0, padding
negative), so pooling is a gather and the whole model exports to ONNX.

The scorer is Dozat & Manning's, as the KLUE paper's baseline: four ELU projections of the
word vectors (arc-dependent, arc-head, relation-dependent, relation-head), a biaffine arc
score ``d_i U h_j + w_d d_i + w_h h_j + b`` (KLUE's BiAttention) and a bilinear relation
score ``d_i U_l h + W_l d_i + W_r h + b_l`` (KLUE's BiLinear). What we leave out of KLUE's
model, deliberately, to keep the head plain: the part-of-speech embeddings (the input text at
prediction time has no tags) and the LSTM encoder/decoder between ELECTRA and the scorers.
A word may not be its own head (KLUE does not mask that). The loss is cross-entropy over
each word's head plus cross-entropy over its relation at the gold head (as KLUE trains);
outputs decode greedily — each word's best-scoring head, then its best relation at that
head (as KLUE evaluates) — not a tree search.
"""
import dataclasses
from typing import Optional

import torch
from torch import nn
from transformers import ElectraModel, ElectraPreTrainedModel
from transformers.utils import ModelOutput

IGNORE_INDEX = -100
DEFAULT_ARC_SPACE, DEFAULT_TYPE_SPACE = 512, 256  # KLUE-baseline's --arc_space and --type_space


@dataclasses.dataclass
class DependencyParsingOutput(ModelOutput):
    loss: Optional[torch.Tensor] = None
    heads: torch.Tensor = None  # [batch, words]: predicted head of each word, 0 = root
    relations: torch.Tensor = None  # [batch, words]: predicted relation id at that head
    head_probabilities: torch.Tensor = None  # softmax probability of the chosen head
    relation_probabilities: torch.Tensor = None  # softmax probability of the chosen relation


class Biaffine(nn.Module):
    """score[b, i, j] = d_i U h_j + w_d . d_i + w_h . h_j + b, for every dependent i and head j."""

    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(size, size))
        self.dependent = nn.Linear(size, 1)
        self.head = nn.Linear(size, 1, bias=False)

    def forward(self, dependents, heads):
        scores = torch.matmul(torch.matmul(dependents, self.weight), heads.transpose(1, 2))
        return scores + self.dependent(dependents) + self.head(heads).transpose(1, 2)


class PairBilinear(nn.Module):
    """score[b, i, l] = d_i U_l h_i + W_l d_i + W_r h_i + b_l, for aligned pairs (d_i, h_i).

    Written with matmul rather than torch's bilinear op, which the ONNX exporter lacks.
    """

    def __init__(self, size, labels):
        super().__init__()
        self.labels, self.size = labels, size
        self.weight = nn.Parameter(torch.zeros(size, labels * size))
        self.dependent = nn.Linear(size, labels)
        self.head = nn.Linear(size, labels, bias=False)

    def forward(self, dependents, heads):
        batch, words, _ = dependents.shape
        mixed = torch.matmul(dependents, self.weight).view(batch, words, self.labels, self.size)
        scores = (mixed * heads.unsqueeze(2)).sum(-1)
        return scores + self.dependent(dependents) + self.head(heads)


class ElectraForDependencyParsing(ElectraPreTrainedModel):
    """ELECTRA + word pooling + biaffine dependency scorer; ``config.id2label`` holds the relations.

    ``config.dp_arc_space`` / ``config.dp_type_space`` size the projections (KLUE's 512 / 256).
    """

    def __init__(self, config):
        super().__init__(config)
        self.electra = ElectraModel(config)
        word_size = 2 * config.hidden_size
        arc = getattr(config, "dp_arc_space", DEFAULT_ARC_SPACE)
        rel = getattr(config, "dp_type_space", DEFAULT_TYPE_SPACE)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.arc_dependent = nn.Linear(word_size, arc)
        self.arc_head = nn.Linear(word_size, arc)
        self.relation_dependent = nn.Linear(word_size, rel)
        self.relation_head = nn.Linear(word_size, rel)
        self.arc_scorer = Biaffine(arc)
        self.relation_scorer = PairBilinear(rel, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        # KLUE initialises its biaffine and bilinear weights Xavier-uniform.
        if isinstance(module, (Biaffine, PairBilinear)):
            nn.init.xavier_uniform_(module.weight)
            return
        super()._init_weights(module)

    def word_vectors(self, hidden, word_starts, word_ends):
        """[batch, 1 + words, 2 * hidden]: first and last sub-token of each word (root = [CLS])."""
        size = hidden.shape[-1]

        def gather(positions):
            index = positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, size)
            return torch.gather(hidden, 1, index)

        return torch.cat([gather(word_starts), gather(word_ends)], dim=-1)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, word_starts=None, word_ends=None,
                head_labels=None, relation_labels=None, return_dict=None, **kwargs):
        hidden = self.electra(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        words = self.dropout(self.word_vectors(hidden, word_starts, word_ends))
        act = nn.functional.elu
        arc_dep, arc_head = act(self.arc_dependent(words[:, 1:])), act(self.arc_head(words))
        rel_dep, rel_head = act(self.relation_dependent(words[:, 1:])), act(self.relation_head(words))

        arc_scores = self.arc_scorer(arc_dep, arc_head)  # [batch, words, 1 + words]
        candidates = word_starts >= 0  # real words and the root can be heads
        n_words = arc_scores.shape[1]
        positions = torch.arange(n_words + 1, device=arc_scores.device)
        self_loops = positions[1:].unsqueeze(1) == positions.unsqueeze(0)  # word i (0-based) is head i + 1
        allowed = candidates.unsqueeze(1) & ~self_loops.unsqueeze(0)
        arc_scores = arc_scores.masked_fill(~allowed, torch.finfo(arc_scores.dtype).min)
        head_p, heads = torch.softmax(arc_scores, dim=-1).max(dim=-1)

        def relation_scores(head_index):
            index = head_index.clamp(min=0).unsqueeze(-1).expand(-1, -1, rel_head.shape[-1])
            return self.relation_scorer(rel_dep, torch.gather(rel_head, 1, index))

        relation_p, relations = torch.softmax(relation_scores(heads), dim=-1).max(dim=-1)
        loss = None
        if head_labels is not None and relation_labels is not None:
            cross_entropy = nn.functional.cross_entropy
            arc_loss = cross_entropy(arc_scores.transpose(1, 2), head_labels, ignore_index=IGNORE_INDEX)
            gold_relations = relation_scores(head_labels)
            relation_loss = cross_entropy(gold_relations.transpose(1, 2), relation_labels, ignore_index=IGNORE_INDEX)
            loss = arc_loss + relation_loss
        return DependencyParsingOutput(loss=loss, heads=heads, relations=relations,
                                       head_probabilities=head_p, relation_probabilities=relation_p)
