"""The copy provider, a Dagster resource switched in one place.

`provider` in the resource config, else the environment variable ``COPY_PROVIDER``, else
``approved_blocks`` (offline, deterministic: the demo as it always ran). With
``openai_compatible`` the resource builds an explicit `openai.OpenAI` client from:

- ``COPY_BASE_URL`` / `base_url`  the endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama)
- ``COPY_MODEL`` / `model`        the model name the endpoint serves
- the API key from the environment variable named by `api_key_env_var` (default
  ``COPY_API_KEY``; local servers accept any value)
- `timeout_seconds`, `max_retries` (the client retries with exponential backoff)

Environment variables are read here, when the resource is used, never at import time and
never in ml/. Generation calls are traced to MLflow; the tracer's export destination is
process-wide MLflow state, set and reset around generation by `mlflow_tracing` below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ml.copy.approval import AutoApproval
from ml.copy.email_blocks import EmailBlocks
from ml.copy.prompts import DEFAULT_PROMPT_ALIAS, ensure_registered_prompt
from ml.copy.providers import APPROVED_BLOCKS, PROVIDERS, GenerationParameters, OpenAICompatibleProvider
from ml.copy.tracing import MlflowGenerationTracer
from ml.tracking import MlflowTarget, ensure_experiment
from orchestration.resources import REPO_ROOT, PipelineSettings

# The approved email blocks (preheaders, body, footer, brand rules): data/copy/, reviewed like
# the subject-line blocks (orchestration.resources.APPROVED_SUBJECT_LINES).
APPROVED_EMAIL_BLOCKS = REPO_ROOT / "data" / "copy" / "approved_email_blocks.v1.json"

# The MLflow experiment generation traces go to.
COPY_EXPERIMENT = "copy-generation"


class CopyProviderResource(dg.ConfigurableResource):
    """Where email copy comes from (docs/copy.md). Empty strings mean "use the environment
    variable, else the default"."""

    provider: str = ""
    base_url: str = ""
    model: str = ""
    api_key_env_var: str = "COPY_API_KEY"
    timeout_seconds: float = 30.0
    max_retries: int = 2
    temperature: float = 0.7
    max_tokens: int = 400
    # Timeouts or provider errors in a row after which the run stops calling the endpoint.
    max_consecutive_failures: int = 3
    prompt_alias: str = DEFAULT_PROMPT_ALIAS
    # The one auto-approval there is: compositions of approved blocks by the deterministic
    # approved_blocks provider. Everything generated waits for a reviewer.
    auto_approve_approved_blocks: bool = True

    def provider_name(self) -> str:
        name = self.provider or os.environ.get("COPY_PROVIDER", "") or APPROVED_BLOCKS
        if name not in PROVIDERS:
            raise dg.Failure(
                f"copy provider {name!r} (resource config `provider` or COPY_PROVIDER) is not one of {list(PROVIDERS)}. "
                "Fix: set it to approved_blocks (offline) or openai_compatible (docs/copy.md)."
            )
        return name

    def auto_approval(self) -> AutoApproval:
        return AutoApproval(approved_blocks=self.auto_approve_approved_blocks)

    def parameters(self) -> GenerationParameters:
        model = self.model or os.environ.get("COPY_MODEL", "")
        if not model:
            raise dg.Failure("the openai_compatible copy provider needs a model. Fix: set COPY_MODEL or the resource's "
                             "`model` (e.g. llama3.1:8b for Ollama).")
        return GenerationParameters(model=model, temperature=self.temperature, max_tokens=self.max_tokens)

    def openai_client(self):
        import openai

        base_url = self.base_url or os.environ.get("COPY_BASE_URL", "")
        if not base_url:
            raise dg.Failure("the openai_compatible copy provider needs an endpoint. Fix: set COPY_BASE_URL or the "
                             "resource's `base_url` (e.g. http://127.0.0.1:11434/v1 for Ollama).")
        return openai.OpenAI(base_url=base_url, api_key=os.environ.get(self.api_key_env_var, "") or "unset",
                             timeout=self.timeout_seconds, max_retries=self.max_retries)

    @contextmanager
    def generator(self, settings: PipelineSettings, email_blocks: EmailBlocks) -> Iterator["OpenAICompatibleProvider | None"]:
        """The generating provider for one run of the copy step (None for approved_blocks):
        its prompt registered and looked up by alias, its calls traced to MLflow."""
        if self.provider_name() == APPROVED_BLOCKS:
            yield None
            return
        client = settings.mlflow_client()
        prompt = ensure_registered_prompt(client, alias=self.prompt_alias)
        experiment_id = ensure_experiment(MlflowTarget(client, settings.mlflow_artifact_location(), COPY_EXPERIMENT))
        with mlflow_tracing(settings.tracking_uri(), experiment_id):
            yield OpenAICompatibleProvider(
                self.openai_client(), prompt=prompt, email_blocks=email_blocks, parameters=self.parameters(),
                tracer=MlflowGenerationTracer(client, experiment_id, prompt=prompt),
                max_consecutive_failures=self.max_consecutive_failures,
            )


@contextmanager
def mlflow_tracing(tracking_uri: str, experiment_id: str) -> Iterator[None]:
    """Export MLflow traces to `experiment_id` at `tracking_uri` while inside, then flush them
    and put MLflow's process-wide tracking URI and tracer back as they were."""
    import mlflow
    from mlflow.entities.trace_location import MlflowExperimentLocation

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.tracing.set_destination(MlflowExperimentLocation(experiment_id=experiment_id))
    try:
        yield
    finally:
        mlflow.flush_trace_async_logging()
        mlflow.tracing.reset()
        mlflow.set_tracking_uri(previous)


@dg.definitions
def copy_resources() -> dg.Definitions:
    return dg.Definitions(resources={"copy_provider": CopyProviderResource()})

