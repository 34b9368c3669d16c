"""A stage kind from outside hone: ``type: acme-weight-noise`` adds seeded Gaussian noise to the weights.

Put this file in a plugins directory (``plugins_dir: [stage-plugin]`` in a spec) or in a package with a
``hone.plugins`` entry point. Followed by an ``evaluate`` stage, it shows how much a model's scores move
when its weights are perturbed; ``hone search`` can sweep ``scale``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hone import Catalog, Register, Results, RunContext, StageSpec, hookimpl


class WeightNoiseStage(StageSpec):
    """What a spec gives an ``acme-weight-noise`` stage (``type`` and ``name`` come from StageSpec)."""

    scale: float = Field(0.01, ge=0, description="Noise std, relative to each weight tensor's own std.")
    seed: int = Field(0, description="Seed of the noise: the same seed perturbs the same way.")

    def results(self, catalog: Catalog) -> Results:
        return Results({"perturbed_tensors": None, "scale": None})  # None: reported, not something to optimise


class WeightNoise:
    def __init__(self, spec: WeightNoiseStage) -> None:
        self.spec = spec

    def run(self, ctx: RunContext, index: int, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        import torch  # stage modules import torch where they run, so `hone plugins` stays fast

        ctx.events.emit("stage_start", stage=ctx.stage_names[index], type=self.spec.type)
        generator = torch.Generator().manual_seed(self.spec.seed)
        perturbed = 0
        with torch.no_grad():
            for weight in ctx.core.parameters():
                if weight.dim() >= 2:  # matrices only: biases and norms keep their values
                    noise = torch.randn(weight.shape, generator=generator) * weight.std() * self.spec.scale
                    weight.add_(noise.to(weight.device, weight.dtype))
                    perturbed += 1
        return {"perturbed_tensors": perturbed, "scale": self.spec.scale}


@hookimpl
def register_stages(register: Register) -> None:
    # model="changes": hone checkpoints the model after the stage, so a resumed run does not perturb it twice
    register("acme-weight-noise", WeightNoise, WeightNoiseStage, model="changes")
