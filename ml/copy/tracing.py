"""Tracing of generation calls: a small protocol the providers call, and its MLflow
implementation through an explicit `MlflowClient` (start_trace / end_trace). Where MLflow
exports the traces to is process-wide tracer state, which the orchestration sets up around
generation (orchestration/defs/copy_provider.py); nothing here touches it."""

from __future__ import annotations

from typing import Any, Protocol


class GenerationTracer(Protocol):
    def start(self, name: str, inputs: dict[str, Any], attributes: dict[str, Any]) -> str | None:
        """Start a trace; returns its id."""

    def end(self, trace_id: str | None, outputs: dict[str, Any], attributes: dict[str, Any], ok: bool) -> None:
        """End the trace with the outputs, token counts and status."""


class MlflowGenerationTracer:
    """One MLflow trace (span type LLM) per generation call, in `experiment_id`."""

    def __init__(self, client, experiment_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id

    def start(self, name: str, inputs: dict[str, Any], attributes: dict[str, Any]) -> str | None:
        span = self.client.start_trace(name, span_type="LLM", inputs=inputs, attributes=attributes,
                                       experiment_id=self.experiment_id)
        return span.trace_id

    def end(self, trace_id: str | None, outputs: dict[str, Any], attributes: dict[str, Any], ok: bool) -> None:
        if trace_id is not None:
            self.client.end_trace(trace_id, outputs=outputs, attributes=attributes, status="OK" if ok else "ERROR")
