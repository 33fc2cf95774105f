"""Loss weighting: how the per-task losses of a step become the loss that is back-propagated.

Every method multiplies each task's loss by the recipe's static ``loss_weight`` and then applies its own rule:

- ``static``: ``Σ w_t L_t``.
- ``uncertainty`` (Kendall et al. 2018): ``Σ w_t (½ e^(−s_t) L_t + ½ s_t)`` with learned log-variances ``s_t``.
- ``dwa`` (Dynamic Weight Average, Liu et al. 2019): ``Σ w_t λ_t L_t`` with
  ``λ_t = K·softmax_t(r_t / T)``, ``r_t = L̄_t(k−1) / L̄_t(k−2)`` the ratio of the task's mean losses over the
  two previous windows (uniform until two windows are complete).
- ``gradnorm`` (GradNorm, Chen et al. 2018): ``Σ λ_t w_t L_t`` with the ``λ_t`` (summing to K) learned so that the
  gradient norm of each task's term at the last shared layer tracks the tasks' mean norm, scaled by the task's
  relative inverse training rate to the power ``α``. It needs every task's loss at every step (``all_tasks`` mode).

The first three work when a step trains one task (the other tasks' terms are absent). Gradient-combination methods
(UPGrad, PCGrad, IMTL-G, …) act on per-task gradients instead and live in :mod:`mtl_nlp.training.gradients`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..config import WeightingConfig


class LossWeighting(nn.Module):
    """Static weighting, and the base of the adaptive methods; its state is saved in checkpoints."""

    needs_shared_gradients = False  # GradNorm: the trainer passes the last shared layer's parameters to watch()

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.register_buffer("static", torch.tensor([static_weights[task] for task in self.tasks]))

    def index(self, task: str) -> int:
        return self.tasks.index(task)

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss to back-propagate for this step's per-task losses."""
        return sum(self.static[self.index(task)] * loss for task, loss in losses.items())

    def weights(self) -> dict[str, float]:
        """Each task's current effective multiplier of its loss, for the logs."""
        return dict(zip(self.tasks, self.static.tolist()))

    def end_window(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Close an averaging window (DWA); ``reduce`` averages a tensor over data-parallel ranks."""

    def end_step(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """After an optimizer step (GradNorm updates its weights); ``reduce`` averages over data-parallel ranks."""

    def discard_step(self) -> None:
        """Forget what was observed during a step whose update was skipped."""


class UncertaintyWeighting(LossWeighting):
    """Kendall et al. (2018): a learned log-variance per task; ``½ e^(−s) L + ½ s`` balances the task scales."""

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float]) -> None:
        super().__init__(tasks, static_weights)
        self.log_variances = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for task, loss in losses.items():
            i = self.index(task)
            s = self.log_variances[i]
            total = total + self.static[i] * (0.5 * torch.exp(-s) * loss + 0.5 * s)
        return total

    def weights(self) -> dict[str, float]:
        effective = 0.5 * self.static * torch.exp(-self.log_variances.detach())
        return dict(zip(self.tasks, effective.tolist()))


class DynamicWeightAverage(LossWeighting):
    """Liu et al. (2019): tasks whose loss fell slowly over the last window get more weight in the next."""

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float], temperature: float) -> None:
        super().__init__(tasks, static_weights)
        self.temperature = temperature
        count = len(self.tasks)
        self.register_buffer("loss_sums", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("loss_counts", torch.zeros(count, dtype=torch.float64))
        # Mean losses of the two previous windows (row 0 older); NaN until a window has completed.
        self.register_buffer("previous_means", torch.full((2, count), float("nan"), dtype=torch.float64))
        self.register_buffer("lambdas", torch.ones(count, dtype=torch.float64))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for task, loss in losses.items():
            i = self.index(task)
            self.loss_sums[i] += loss.detach().double()
            self.loss_counts[i] += 1
            total = total + self.static[i] * self.lambdas[i].to(loss.dtype) * loss
        return total

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, (self.static * self.lambdas).tolist()))

    def end_window(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        sums, counts = reduce(self.loss_sums), reduce(self.loss_counts)
        # A task not drawn in this window keeps its previous mean.
        means = torch.where(counts > 0, sums / counts.clamp(min=1), self.previous_means[1])
        self.previous_means.copy_(torch.stack([self.previous_means[1], means]))
        self.loss_sums.zero_()
        self.loss_counts.zero_()
        rates = self.previous_means[1] / self.previous_means[0]
        if torch.isfinite(rates).all():
            self.lambdas.copy_(len(self.tasks) * torch.softmax(rates / self.temperature, dim=0))


class GradNorm(LossWeighting):
    """Chen et al. (2018): task weights ``λ`` learned so that the tasks' gradient norms at the last shared layer
    ``W`` stay balanced, each in proportion to how slowly its loss falls.

    With ``L'_t = w_t L_t`` (the recipe's ``loss_weight`` times the loss) and ``g_t = ‖∇_W L'_t‖`` (measured at each
    step), ``G_t = λ_t g_t``, ``Ḡ = mean_t G_t``, ``r_t = (L'_t / L'_t(0)) / mean_s (L'_s / L'_s(0))``: the weights
    follow the gradient of ``Σ_t |G_t − Ḡ r_t^α|`` (the target held constant) through Adam at ``learning_rate``, and
    are renormalised to sum to the number of tasks K. The step is taken on ``log λ_t`` (the gradient there is
    ``sign(G_t − Ḡ r_t^α) G_t``) and ``λ = K·softmax(log λ)`` renormalises: weights stay positive and approach a
    balance far from 1 (a loss 100× another) in relative steps, instead of overshooting past zero.

    Each ``g_t`` is the gradient of one task's term with respect to ``W`` alone (``torch.autograd.grad`` with the
    graph kept): it runs back through the head and the layers above ``W``, not through the whole encoder, before the
    full backward of the same term. The per-task gradients are averaged over data-parallel ranks before their norms
    are taken, so every rank makes the same update.
    """

    needs_shared_gradients = True
    ADAM_BETAS = (0.9, 0.999)
    ADAM_EPSILON = 1e-8

    def __init__(
        self, tasks: list[str], static_weights: Mapping[str, float], alpha: float, learning_rate: float
    ) -> None:
        super().__init__(tasks, static_weights)
        self.alpha = alpha
        self.learning_rate = learning_rate
        count = len(self.tasks)
        self.register_buffer("lambdas", torch.ones(count, dtype=torch.float64))
        self.register_buffer("initial_losses", torch.full((count,), float("nan"), dtype=torch.float64))
        self.register_buffer("gradient_norms", torch.full((count,), float("nan"), dtype=torch.float64))
        # Adam's first and second moments of the gradient with respect to log λ, and its step count.
        self.register_buffer("moments", torch.zeros(2, count, dtype=torch.float64))
        self.register_buffer("updates", torch.zeros(1, dtype=torch.float64))
        self.shared_parameters: list[nn.Parameter] = []
        self._reset_step()

    def watch(self, parameters: list[nn.Parameter]) -> None:
        """Measure the gradient norms with respect to ``parameters`` (the last shared layer's)."""
        self.shared_parameters = list(parameters)

    def _reset_step(self) -> None:
        self._gradients: dict[int, torch.Tensor] = {}
        self._losses: dict[int, torch.Tensor] = {}
        self._counts: dict[int, int] = {}

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for task, loss in losses.items():
            i = self.index(task)
            term = self.static[i] * loss
            if term.requires_grad:
                self._observe(i, term)
            total = total + self.lambdas[i].to(loss.dtype) * term
        return total

    def _observe(self, i: int, term: torch.Tensor) -> None:
        """Add the gradient of ``term`` (one task's weighted loss) at the shared layer to the step's sums."""
        gradients = torch.autograd.grad(term, self.shared_parameters, retain_graph=True, allow_unused=True)
        flat = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(gradients, self.shared_parameters)
            ]
        ).double()
        self._gradients[i] = self._gradients[i] + flat if i in self._gradients else flat
        self._losses[i] = self._losses.get(i, 0.0) + term.detach().double()
        self._counts[i] = self._counts.get(i, 0) + 1

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, (self.static * self.lambdas).tolist()))

    def discard_step(self) -> None:
        self._reset_step()

    def end_step(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if len(self._gradients) != len(self.tasks):
            raise RuntimeError("GradNorm needs every task's loss in each step (sampling.mode: all_tasks).")
        order = range(len(self.tasks))
        counts = torch.tensor([self._counts[i] for i in order], dtype=torch.float64, device=self.lambdas.device)
        gradients = reduce(torch.stack([self._gradients[i] for i in order]) / counts[:, None])
        losses = reduce(torch.stack([self._losses[i] for i in order]) / counts)
        self._reset_step()
        norms = gradients.norm(dim=1)
        if not (torch.isfinite(norms).all() and torch.isfinite(losses).all()):
            return
        if torch.isnan(self.initial_losses).any():
            self.initial_losses.copy_(losses)
        balanced = self.lambdas * norms
        self.gradient_norms.copy_(balanced)
        rates = losses / self.initial_losses
        targets = balanced.mean() * (rates / rates.mean()) ** self.alpha
        self._adam_step(torch.sign(balanced - targets) * balanced)

    def _adam_step(self, gradient: torch.Tensor) -> None:
        """One Adam step on ``log λ`` with ``gradient`` (its gradient), then ``λ = K·softmax(log λ)``."""
        (beta1, beta2), moments = self.ADAM_BETAS, self.moments
        self.updates += 1
        moments[0].mul_(beta1).add_((1 - beta1) * gradient)
        moments[1].mul_(beta2).add_((1 - beta2) * gradient**2)
        step = int(self.updates.item())
        first, second = moments[0] / (1 - beta1**step), moments[1] / (1 - beta2**step)
        logits = self.lambdas.log() - self.learning_rate * first / (second.sqrt() + self.ADAM_EPSILON)
        self.lambdas.copy_(len(self.tasks) * torch.softmax(logits, dim=0))


def build_weighting(config: WeightingConfig, static_weights: Mapping[str, float]) -> LossWeighting:
    """The loss weighting the recipe asks for."""
    tasks = list(static_weights)
    if config.method == "gradnorm":
        return GradNorm(tasks, static_weights, config.gradnorm_alpha, config.gradnorm_learning_rate)
    if config.method == "uncertainty":
        return UncertaintyWeighting(tasks, static_weights)
    if config.method == "dwa":
        return DynamicWeightAverage(tasks, static_weights, config.dwa_temperature)
    return LossWeighting(tasks, static_weights)
