"""CORES, the convolutional response-based score (Tang et al., CVPR 2024). It needs the network.

Sign convention: higher = more in-distribution (ID).

The paper has no official public code (docs/references.md); we work from its description. The idea:
ID samples produce stronger *extreme* convolutional responses than OOD samples. CORES therefore
measures the magnitude and the frequency of significant responses in *sample-relevant* kernels,
which it finds by backtracking from the most prominent predictions. Our implementation, with every
decision the paper leaves open made explicit (all are parameters):

1. **Kernel selection (backtracking).** Take the top ``top_classes`` predicted classes ("max" path)
   and the least-likely class ("min" path). For each path, start from those classes and walk
   through the model's response layers, deepest first. At each layer, a channel's relevance is
   ``r = sel @ link``, where ``sel`` is the 0/1 indicator of what was selected one layer deeper.
   Keep the ``k = max(1, round(keep_ratio * C))`` most relevant channels. Links are linearised
   weight paths, defined per model in :mod:`oodflow.models.responses`.
2. **Layer score.** Per selected channel, take its spatial extreme: the max response ``M_c`` on
   the max path, the min response ``m_c`` on the min path. Then

   .. math::
       RM^+ = \\operatorname{mean}_c \\operatorname{relu}(M_c - \\tau^+), \\quad
       RF^+ = \\operatorname{mean}_c 1[M_c > \\tau^+]

   and, on the min path, :math:`RM^- = \\operatorname{mean}_c \\operatorname{relu}(-m_c - \\tau^-)`,
   :math:`RF^- = \\operatorname{mean}_c 1[-m_c > \\tau^-]`. The layer score is
   :math:`(RM^+)^{\\lambda_1} (RF^+)^{\\lambda_2} + (RM^-)^{\\lambda_1} (RF^-)^{\\lambda_2}`. The
   second term is dropped with ``use_min=False``.
3. **Combination.** The score is the sum of the layer scores over the ``layers`` deepest response
   layers (``combine="product"`` multiplies them instead).

Three choices where the unofficial sketch (anju-chhetri/CodeFromPapers@38cda509, ``CORES/cores.py``)
differs are parameters (``max_path``, ``min_relevance``, ``neg_threshold``); docs/cores.md gives the
reasoning for each default.

Defaults: ``top_classes = 3``, ``keep_ratio = 0.125`` (64 of 512 ResNet channels, as in the unofficial
reference), ``tau_pos = 0``, ``tau_neg = 1``, ``lam_magnitude = lam_frequency = 1``, all the model's
response layers. Responses are read before batch norm, so the thresholds are in units of raw
convolution outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from oodflow.scores.base import NetworkScore

if TYPE_CHECKING:  # pragma: no cover
    import torch

COMBINE = ("sum", "product")
MAX_PATHS = ("merged", "per_class")
MIN_RELEVANCE = ("most_positive", "most_negative")
NEG_THRESHOLDS = ("below_minus_tau", "below_tau")


def backtrack(
    classes: torch.Tensor, links: list[torch.Tensor], keep: list[int], largest: bool = True
) -> list[torch.Tensor]:
    """Channel indices ``(N, keep[l])`` selected at each response layer, deepest first.

    ``classes (N, m)`` are the starting classes of each sample. ``links[l]`` is layer ``l``'s
    ``(C_up, C_l)`` link, and ``links[0]`` maps onto the classes. Each layer keeps the channels of
    largest relevance (``largest=False``: of smallest, i.e. most negative, relevance).
    """
    import torch

    n, num_classes = classes.shape[0], links[0].shape[0]
    sel = torch.zeros(n, num_classes, dtype=links[0].dtype, device=classes.device)
    sel.scatter_(1, classes, 1.0)
    chosen = []
    for link, k in zip(links, keep, strict=True):
        relevance = sel @ link.to(sel.device)
        idx = relevance.topk(k, dim=1, largest=largest).indices
        chosen.append(idx)
        sel = torch.zeros_like(relevance).scatter_(1, idx, 1.0)
    return chosen


def extreme_term(
    extremes: torch.Tensor, tau: float, lam_magnitude: float, lam_frequency: float
) -> torch.Tensor:
    """``(mean relu(e - tau))^lam_m * (mean 1[e > tau])^lam_f`` over the channels of ``extremes (N, k)``."""
    magnitude = (extremes - tau).clamp_min(0).mean(dim=1)
    frequency = (extremes > tau).to(extremes.dtype).mean(dim=1)
    return magnitude.pow(lam_magnitude) * frequency.pow(lam_frequency)


def layer_score(
    maxima: torch.Tensor,
    minima: torch.Tensor,
    idx_max: torch.Tensor | list[torch.Tensor],
    idx_min: torch.Tensor | None,
    tau_pos: float = 0.0,
    tau_neg: float = 1.0,
    lam_magnitude: float = 1.0,
    lam_frequency: float = 1.0,
    neg_threshold: str = "below_minus_tau",
) -> torch.Tensor:
    """Score of one layer from per-channel spatial maxima/minima ``(N, C)`` and the selected channels.

    ``idx_max`` is one channel set, or a list of sets (one per top class: the max-path term is then
    the mean of the sets' terms). With ``idx_min = None``, only the max-path term is used. A minimum
    ``m`` is significant when ``m < -tau_neg`` (magnitude ``-m - tau_neg``; ``neg_threshold=
    "below_minus_tau"``) or when ``m < tau_neg`` (magnitude ``tau_neg - m``; ``"below_tau"``).
    """
    sets = idx_max if isinstance(idx_max, list) else [idx_max]
    terms = [extreme_term(maxima.gather(1, idx), tau_pos, lam_magnitude, lam_frequency) for idx in sets]
    score = terms[0] if len(terms) == 1 else sum(terms) / len(terms)
    if idx_min is not None:
        if neg_threshold not in NEG_THRESHOLDS:
            valid = ", ".join(NEG_THRESHOLDS)
            raise ValueError(f"neg_threshold must be one of {valid}, got {neg_threshold!r}")
        tau = tau_neg if neg_threshold == "below_minus_tau" else -tau_neg
        score = score + extreme_term(-minima.gather(1, idx_min), tau, lam_magnitude, lam_frequency)
    return score


class CORES(NetworkScore):
    """Convolutional response-based score (see the module docstring for the formula).

    Args:
        layers: number of the model's response layers to use, deepest first (``None``: all).
        keep_ratio: fraction of each layer's channels kept by the backtracking.
        top_classes: predicted classes that start the max path.
        tau_pos, tau_neg: thresholds of significant maximum / (negated) minimum responses.
        lam_magnitude, lam_frequency: exponents of the magnitude and frequency terms.
        use_min: add the min-path term (least-likely class, negative extremes).
        combine: ``sum`` or ``product`` of the layer scores.
        max_path: ``merged`` (the top classes start one channel set) or ``per_class`` (each top class
            backtracks its own set; the layer's max term is the mean of their terms, as the
            unofficial sketch keeps one set per class).
        min_relevance: the min path keeps the channels most positively linked to the least-likely
            class (``most_positive``, the max path's rule) or the most negatively linked ones
            (``most_negative``, the unofficial sketch's rule below the last layer).
        neg_threshold: a minimum response is significant below ``-tau_neg`` (``below_minus_tau``) or
            below ``tau_neg`` (``below_tau``); the sketch's executed code equals ``below_minus_tau``
            with ``tau_neg = 0``.

    docs/cores.md gives the reasoning behind each default.
    """

    name = "cores"

    def __init__(
        self,
        layers: int | None = None,
        keep_ratio: float = 0.125,
        top_classes: int = 3,
        tau_pos: float = 0.0,
        tau_neg: float = 1.0,
        lam_magnitude: float = 1.0,
        lam_frequency: float = 1.0,
        use_min: bool = True,
        combine: str = "sum",
        max_path: str = "merged",
        min_relevance: str = "most_positive",
        neg_threshold: str = "below_minus_tau",
    ) -> None:
        if layers is not None and (not isinstance(layers, int) or layers < 1):
            raise ValueError(
                f"score '{self.name}': layers must be a positive integer or null, got {layers!r}"
            )
        if not 0.0 < float(keep_ratio) <= 1.0:
            raise ValueError(f"score '{self.name}': keep_ratio must be in (0, 1], got {keep_ratio}")
        if not isinstance(top_classes, int) or top_classes < 1:
            raise ValueError(
                f"score '{self.name}': top_classes must be a positive integer, got {top_classes!r}"
            )
        for key, value in (("lam_magnitude", lam_magnitude), ("lam_frequency", lam_frequency)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"score '{self.name}': {key} must be >= 0, got {value}")
        if combine not in COMBINE:
            raise ValueError(
                f"score '{self.name}': combine must be one of {', '.join(COMBINE)}, got {combine!r}"
            )
        for key, value, valid in (
            ("max_path", max_path, MAX_PATHS),
            ("min_relevance", min_relevance, MIN_RELEVANCE),
            ("neg_threshold", neg_threshold, NEG_THRESHOLDS),
        ):
            if value not in valid:
                raise ValueError(
                    f"score '{self.name}': {key} must be one of {', '.join(valid)}, got {value!r}"
                )
        self.max_path, self.min_relevance, self.neg_threshold = max_path, min_relevance, neg_threshold
        self.layers, self.keep_ratio, self.top_classes = layers, float(keep_ratio), top_classes
        self.tau_pos, self.tau_neg = float(tau_pos), float(tau_neg)
        self.lam_magnitude, self.lam_frequency = float(lam_magnitude), float(lam_frequency)
        self.use_min, self.combine = bool(use_min), combine

    def _response_layers(self, model):
        try:
            layers = model.response_layers()
        except (AttributeError, NotImplementedError) as err:
            raise TypeError(f"score '{self.name}': {err}") from None
        if self.layers is not None:
            if self.layers > len(layers):
                raise ValueError(
                    f"score '{self.name}': layers={self.layers} but {type(model).__name__} has "
                    f"{len(layers)} response layers ({', '.join(r.name for r in layers)})"
                )
            layers = layers[: self.layers]
        return layers

    def score_inputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """CORES scores ``(B,)`` (float64, on the inputs' device) of one batch of inputs."""
        import torch

        layers = self._response_layers(model)
        extremes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def hook(i: int):
            def read(_module, _inputs, output):  # reduce at once: a later in-place ReLU may alter it
                extremes[i] = (output.amax(dim=(2, 3)).double(), output.amin(dim=(2, 3)).double())

            return read

        handles = [layer.module.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(inputs)
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        links = [layer.link.double() for layer in layers]
        keep = [max(1, round(self.keep_ratio * layer.channels)) for layer in layers]
        top = logits.topk(min(self.top_classes, logits.shape[1]), dim=1).indices
        if self.max_path == "merged":
            max_paths = [backtrack(top, links, keep)]
        else:
            max_paths = [backtrack(top[:, j : j + 1], links, keep) for j in range(top.shape[1])]
        min_path = None
        if self.use_min:
            largest = self.min_relevance == "most_positive"
            min_path = backtrack(logits.argmin(dim=1, keepdim=True), links, keep, largest=largest)
        total = None
        for i in range(len(layers)):
            maxima, minima = extremes[i]
            s = layer_score(
                maxima,
                minima,
                [path[i] for path in max_paths] if len(max_paths) > 1 else max_paths[0][i],
                None if min_path is None else min_path[i],
                self.tau_pos,
                self.tau_neg,
                self.lam_magnitude,
                self.lam_frequency,
                self.neg_threshold,
            )
            total = s if total is None else (total + s if self.combine == "sum" else total * s)
        return total
