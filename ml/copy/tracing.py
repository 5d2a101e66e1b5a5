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
    """One MLflow trace (span type LLM) per generation call, in `experiment_id`, linked to the
    registered prompt version it used (`prompt`: an ml.copy.prompts.RegisteredPrompt), so the
    MLflow UI leads from the prompt version to its calls and back."""

    def __init__(self, client, experiment_id: str, prompt=None) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.prompt = prompt
        self._prompt_version = None

    def start(self, name: str, inputs: dict[str, Any], attributes: dict[str, Any]) -> str | None:
        span = self.client.start_trace(name, span_type="LLM", inputs=inputs, attributes=attributes,
                                       experiment_id=self.experiment_id)
        if self.prompt is not None:
            if self._prompt_version is None:
                self._prompt_version = self.client.get_prompt_version(self.prompt.name, self.prompt.version)
            self.client.link_prompt_versions_to_trace([self._prompt_version], span.trace_id)
        return span.trace_id

    def end(self, trace_id: str | None, outputs: dict[str, Any], attributes: dict[str, Any], ok: bool) -> None:
        if trace_id is not None:
            self.client.end_trace(trace_id, outputs=outputs, attributes=attributes, status="OK" if ok else "ERROR")
