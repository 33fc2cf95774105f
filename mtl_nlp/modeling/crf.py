"""A batched linear-chain CRF: negative log-likelihood by the forward algorithm, Viterbi decoding, both in tensors.

Written here because no maintained library does it on current PyTorch: pytorch-crf's last release is from 2019
and flair's CRF pins transformers < 5. Sequences are packed to the left with a length per sequence (positions
at or beyond a sequence's length are ignored, whatever they hold); every step works on the whole batch at once,
the only Python loop is over time. Decoding masks the transitions a tag scheme forbids (IOB2: ``I-X`` only
after ``B-X`` or ``I-X``, …) with a large negative score, so they are never decoded while every value stays
finite. The likelihood uses the learned scores as they are: gold sequences that break the scheme (a sentence cut
by truncation inside an IOBES entity, an annotation slip) then cost a finite loss instead of a huge one, and the
learned scores of transitions never seen in training go down by themselves.
"""

from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1.0e4


def _entity(tag: str) -> tuple[str, str]:
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def allowed_transitions(labels: list[str], scheme: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which tag may start a sentence, follow each tag (``follow[previous, next]``), and end a sentence.

    IOB2: ``I-X`` only after ``B-X``/``I-X``, never first. IOB1: ``B-X`` only right after an ``X`` tag (it
    separates two entities of one type), so never first. IOBES (BILOU with ``L``/``U`` for ``E``/``S``): after
    ``B-X``/``I-X`` only ``I-X``/``E-X``; ``I-X``/``E-X`` only after ``B-X``/``I-X``; never start with ``I``/``E``,
    never end on ``B``/``I``. ``none``: every move is allowed.
    """
    size = len(labels)
    start = torch.ones(size, dtype=torch.bool)
    end = torch.ones(size, dtype=torch.bool)
    follow = torch.ones(size, size, dtype=torch.bool)
    if scheme == "none":
        return start, follow, end
    inside, last = ("I", "L") if scheme == "bilou" else ("I", "E")
    parsed = [_entity(label) for label in labels]
    for j, (prefix, kind) in enumerate(parsed):
        for i, (previous, previous_kind) in enumerate(parsed):
            same_type = previous != "O" and previous_kind == kind
            if scheme == "iob2":
                follow[i, j] = prefix != "I" or same_type
            elif scheme == "iob1":
                follow[i, j] = prefix != "B" or same_type
            else:
                is_open = previous in ("B", inside)
                continues = prefix in (inside, last)
                follow[i, j] = (is_open and continues and same_type) or (not is_open and not continues)
        if scheme in ("iob2", "iob1"):
            start[j] = prefix != ("I" if scheme == "iob2" else "B")
        else:
            start[j] = prefix not in (inside, last)
            end[j] = prefix not in ("B", inside)
    return start, follow, end


class LinearChainCRF(nn.Module):
    """Transition scores between tags (plus start and end scores), with an optional mask of allowed moves."""

    def __init__(self, labels: list[str], scheme: str = "none") -> None:
        super().__init__()
        size = len(labels)
        self.transitions = nn.Parameter(torch.zeros(size, size))
        self.start_transitions = nn.Parameter(torch.zeros(size))
        self.end_transitions = nn.Parameter(torch.zeros(size))
        # Saved with the weights: a model loaded by from_pretrained is built on the meta device, where a buffer
        # computed here would not survive.
        start, follow, end = allowed_transitions(labels, scheme)
        self.register_buffer("allowed_start", start)
        self.register_buffer("allowed", follow)
        self.register_buffer("allowed_end", end)

    def scores(self, constrained: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start, transition and end scores, with the forbidden moves masked when ``constrained``."""
        if not constrained:
            return self.start_transitions, self.transitions, self.end_transitions
        return (
            torch.where(self.allowed_start, self.start_transitions, FORBIDDEN),
            torch.where(self.allowed, self.transitions, FORBIDDEN),
            torch.where(self.allowed_end, self.end_transitions, FORBIDDEN),
        )

    def negative_log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Mean over sentences of −log p(tags | emissions); sentences of length 0 add nothing.

        ``emissions``: (batch, time, tags); ``tags``: (batch, time) tag ids (any value past a length);
        ``lengths``: (batch,).
        """
        start, transitions, end = self.scores(constrained=False)
        return _negative_log_likelihood(emissions.float(), tags, lengths, start, transitions, end)

    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The best tag sequence per sentence (Viterbi), shape (batch, time); -1 past each length."""
        start, transitions, end = self.scores()
        return viterbi(emissions.float(), lengths, start, transitions, end)


def _log_partition(
    emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1), dim=1)
        alpha = torch.where(mask[:, t : t + 1], step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def _negative_log_likelihood(
    emissions: torch.Tensor,
    tags: torch.Tensor,
    lengths: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    time = emissions.shape[1]
    if time == 0:
        return emissions.sum() * 0
    mask = torch.arange(time, device=emissions.device).unsqueeze(0) < lengths.unsqueeze(1)
    tags = torch.where(mask, tags, 0)
    emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    moved = transitions[tags[:, :-1], tags[:, 1:]]
    last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    path = start[tags[:, 0]] + (emitted * mask).sum(1) + (moved * mask[:, 1:]).sum(1) + end[last]
    nonempty = lengths > 0
    nll = torch.where(nonempty, _log_partition(emissions, mask, start, transitions, end) - path, 0.0)
    return nll.sum() / nonempty.sum().clamp(min=1)


def viterbi(
    emissions: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """Viterbi decoding of a packed batch; see :meth:`LinearChainCRF.decode`."""
    batch, time, _ = emissions.shape
    best = torch.full((batch, time), -1, dtype=torch.long, device=emissions.device)
    if time == 0:
        return best
    mask = torch.arange(time, device=emissions.device).unsqueeze(0) < lengths.unsqueeze(1)
    score = start + emissions[:, 0]
    pointers = []
    for t in range(1, time):
        candidates = score.unsqueeze(2) + transitions
        step, pointer = candidates.max(dim=1)
        pointers.append(pointer)
        score = torch.where(mask[:, t : t + 1], step + emissions[:, t], score)
    current = (score + end).argmax(dim=1)
    for t in range(time - 1, -1, -1):
        # At a sentence's last position the path starts from its best final tag; before it, follow the pointers.
        at_end = lengths - 1 == t
        inside = t < lengths - 1
        if t + 1 < time:
            followed = pointers[t].gather(1, best[:, t + 1].clamp(min=0).unsqueeze(1)).squeeze(1)
            current = torch.where(inside, followed, current)
        best[:, t] = torch.where(at_end | inside, current, -1)
    return best
