"""A SIREN training step near the CPU's matrix-multiply speed, with autograd's exact math.

Autograd over a whole image keeps every activation of every layer in main memory and runs
each elementwise op as its own pass. This step walks the coordinates in chunks small enough
for the activations to stay in cache, writes the backward of the sine layers by hand from
cached cos(t) (computed with sin(t) in one native pass, see kernels.py), folds w0 and the
loss scale into the matrix products' alpha, and reuses its buffers across steps.

For a sine layer h = sin(t), t = w0 (x W^T + b), with upstream gradient dh:
    g = dh * cos(t),  dW += w0 g^T x,  db += w0 sum(g),  dx = w0 g W.

Threads take whole chunks (kancoin.parallel), never parts of one op.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kancoin.kernels import mul_column_sums_, sine_layer_, use_native
from kancoin.parallel import ChunkThreads

DEFAULT_CHUNK = 4096  # coordinates per chunk: its activations stay in the core's caches


class _Workspace:
    """One thread's buffers for one model shape and chunk size, allocated once."""

    def __init__(self, widths: list[int], chunk: int, like: torch.Tensor):
        hidden = widths[1:-1]  # SIREN's sine layers all have the same width

        def empty(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=like.dtype, device=like.device)

        self.sines = [empty(chunk, w) for w in hidden]  # layer outputs, inputs of the next
        self.cosines = [empty(chunk, w) for w in hidden]  # pre-activation, then cos, then g
        self.output = empty(chunk, widths[-1])  # prediction, then residual, then its gradient
        self.squares = empty(chunk, widths[-1])
        self.output_sum = empty(widths[-1])
        self.upstream = [empty(chunk, hidden[0]) for _ in range(2)] if hidden else []  # dh
        self.bias_sum = empty(hidden[0]) if hidden else None


class SirenFastStep:
    """StepFn for Siren models: chunked forward and hand-written backward.

    `threads` defaults to torch's intra-op thread count at call time (`--threads`);
    `kernel` picks the sin/cos implementation ("auto", "native" or "torch").
    """

    def __init__(
        self, chunk: int = DEFAULT_CHUNK, kernel: str = "auto", threads: int | None = None
    ):
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.chunk = chunk
        self.kernel = kernel
        self._threads = ChunkThreads(threads)
        self._key: tuple | None = None
        self._workspaces: list[_Workspace] = []

    @torch.no_grad()
    def __call__(
        self, model: nn.Module, coords: Tensor, targets: Tensor, weights: Tensor | None = None
    ) -> Tensor:
        step_kind = getattr(model, "step_kind", None)
        if step_kind is None or step_kind() != "siren":
            raise TypeError(f"the SIREN step cannot train a {type(model).__name__}")
        coords, targets = model.encode(coords).contiguous(), targets.contiguous()
        count, channels = targets.shape
        chunk = min(self.chunk, max(1, count))
        starts = list(range(0, count, chunk))
        widths = [model.weights[0].shape[1]] + [w.shape[0] for w in model.weights]
        workspaces = self._workspaces_for(widths, chunk, coords, self._threads.count(len(starts)))
        job = _Job(
            model=model,
            coords=coords,
            targets=targets,
            weights=None if weights is None else weights.reshape(count, 1).to(targets.dtype),
            sq_err=torch.empty(count, dtype=targets.dtype, device=targets.device),
            scale=2.0 / (count * channels),  # d(mean squared error)/d(residual)
            native=use_native(self.kernel, coords, *workspaces[0].sines, *model.biases),
            chunk=chunk,
            workspaces=workspaces,
        )
        self._threads.run([*model.weights, *model.biases], starts, job.run)
        return job.sq_err

    def _workspaces_for(self, widths, chunk, like, threads) -> list[_Workspace]:
        key = (tuple(widths), chunk, like.dtype, like.device)
        if self._key != key:
            self._key, self._workspaces = key, []
        while len(self._workspaces) < threads:
            self._workspaces.append(_Workspace(widths, chunk, like))
        return self._workspaces


class _Job:
    """One step's inputs and outputs, shared read-only by the threads (sq_err: disjoint rows)."""

    def __init__(
        self, *, model, coords, targets, weights, sq_err, scale, native, chunk, workspaces
    ):
        self.layer_weights = [w.detach() for w in model.weights]  # workers run outside no_grad
        self.biases = [b.detach() for b in model.biases]
        self.frequencies = model.frequencies()
        self.coords = coords
        self.targets = targets
        self.importance = weights
        self.sq_err = sq_err
        self.scale = scale
        self.native = native
        self.chunk = chunk
        self.workspaces = workspaces

    def run(self, thread: int, starts: list[int], grads: list) -> None:
        layers = len(self.layer_weights)
        weight_grads, bias_grads = grads[:layers], grads[layers:]
        # layers below the lowest trained one (a prior's frozen layers) need no backward
        lowest = next(
            (k for k in range(layers) if weight_grads[k] is not None or bias_grads[k] is not None),
            layers,
        )
        for start in starts:
            stop = min(start + self.chunk, self.coords.shape[0])
            self._chunk(start, stop, self.workspaces[thread], weight_grads, bias_grads, lowest)

    def _chunk(self, start, stop, work, weight_grads, bias_grads, lowest=0) -> None:
        weights, biases, frequencies = self.layer_weights, self.biases, self.frequencies
        rows, native = stop - start, self.native
        hidden = len(frequencies)
        x = self.coords[start:stop]
        h = x
        for k in range(hidden):
            z = work.cosines[k][:rows]
            torch.mm(h, weights[k].t(), out=z)
            h = work.sines[k][:rows]
            sine_layer_(z, h, biases[k], frequencies[k], native=native)
        residual = work.output[:rows]
        torch.addmm(biases[hidden], h, weights[hidden].t(), out=residual)
        residual.sub_(self.targets[start:stop])
        squares = work.squares[:rows]
        torch.mul(residual, residual, out=squares)
        torch.sum(squares, dim=1, out=self.sq_err[start:stop])
        if self.importance is not None:
            residual.mul_(self.importance[start:stop])
        residual.mul_(self.scale)
        if weight_grads[hidden] is not None:
            weight_grads[hidden].addmm_(residual.t(), h)
        if bias_grads[hidden] is not None:
            torch.sum(residual, dim=0, out=work.output_sum)
            bias_grads[hidden].add_(work.output_sum)
        if hidden == 0 or lowest >= hidden:
            return
        current = 0
        upstream = work.upstream[current][:rows]
        torch.mm(residual, weights[hidden], out=upstream)
        for k in range(hidden - 1, lowest - 1, -1):
            w0 = frequencies[k]
            g = work.cosines[k][:rows]
            mul_column_sums_(g, upstream, work.bias_sum, native=native)
            if weight_grads[k] is not None:
                layer_input = x if k == 0 else work.sines[k - 1][:rows]
                weight_grads[k].addmm_(g.t(), layer_input, alpha=w0)
            if bias_grads[k] is not None:
                bias_grads[k].add_(work.bias_sum, alpha=w0)
            if k > lowest:
                current = 1 - current
                below = work.upstream[current][:rows]
                torch.addmm(below, g, weights[k], beta=0.0, alpha=w0, out=below)
                upstream = below
