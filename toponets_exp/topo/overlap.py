"""TopoLoss's gradient computed concurrently with the training step's forward and backward.

The topo gradient depends only on the weights, which stay fixed from the start of a step's forward to its optimizer
step. So it can be computed while forward/backward run — on a side CUDA stream on a GPU, in a worker thread on CPU
(torch ops release the GIL, so the worker uses a core the step leaves idle) — into buffers shaped like the weights,
and added to the gradients in the optimizer-step hook with one foreach add.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from toponets_exp.topo.topoloss import Scale, TopoLoss

Result = tuple[torch.Tensor, dict[str, torch.Tensor]]


class ConcurrentTopoGrad:
    """One TopoLoss gradient in flight at a time: `launch` starts it, `add_to_grads` waits and adds it to .grad."""

    def __init__(self, loss: TopoLoss) -> None:
        self.loss = loss
        self.buffers: list[torch.Tensor | None] | None = None
        self.scale: Scale | None = None
        self._future: Future[Result] | None = None
        self._stream: torch.cuda.Stream | None = None
        self._result: Result | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def device(self) -> torch.device:
        """Where the topo weights are (and the gradient is computed)."""
        return self.loss.layers[0].param.device

    @property
    def pending(self) -> bool:
        """Whether a gradient has been launched and not yet added."""
        return self.scale is not None

    def _compute(self, scale: Scale) -> Result:
        """Zero the buffers and write ∂total/∂W into them (float32 maths, no autograd, no autocast)."""
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for buffer in self.buffers:
                if buffer is not None:
                    buffer.zero_()
            return self.loss.accumulate_grad(scale, dtype=torch.float32, into=self.buffers)

    def launch(self, scale: Scale) -> None:
        """Start computing the gradient of the current weights at τ multiplier `scale`."""
        if self.pending:
            raise RuntimeError("a TopoLoss gradient is already in flight; add it to the gradients first")
        if self.buffers is None:
            self.buffers = [torch.zeros_like(l.param, memory_format=torch.contiguous_format)
                            if l.weight and l.param.requires_grad else None for l in self.loss.layers]
        self.scale = scale
        if self.device.type == "cuda":
            self._stream = self._stream or torch.cuda.Stream(self.device)
            self._stream.wait_stream(torch.cuda.current_stream(self.device))  # weights after the last optimizer step
            with torch.cuda.stream(self._stream):
                self._result = self._compute(scale)
        else:
            self._executor = self._executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="topo-grad")
            self._future = self._executor.submit(self._compute, scale)

    def _wait(self) -> Result:
        """The launched computation's (total, per-layer), once it has finished (on the current stream's timeline)."""
        if self._future is not None:
            future, self._future = self._future, None
            return future.result()
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self._stream)
        result, self._result = self._result, None
        for tensor in [result[0], *result[1].values()]:  # made on the side stream, read on this one
            tensor.record_stream(current)
        return result

    def add_to_grads(self) -> Result:
        """Wait for the launched gradient and add it to the parameters' .grad; (total, per-layer)."""
        result = self._wait()
        self.scale = None
        grads, buffers = [], []
        for layer, buffer in zip(self.loss.layers, self.buffers):
            if buffer is None:
                continue
            if layer.param.grad is None:
                layer.param.grad = torch.zeros_like(layer.param)
            grads.append(layer.param.grad)
            buffers.append(buffer)
        torch._foreach_add_(grads, buffers)
        return result

    def discard(self) -> None:
        """Drop a launched gradient (waiting for it to finish, so nothing writes the buffers afterwards)."""
        if self.pending:
            self._wait()
            self.scale = None

    def close(self) -> None:
        """Discard what is in flight and stop the worker thread."""
        self.discard()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
