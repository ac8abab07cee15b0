"""A minimal Ray Serve LLM application for ``examples/ray-serve.toml``.

Run with ``serve run examples.ray_serve_llm_app:app``; it serves the OpenAI API
(``/v1/chat/completions``, ``/v1/models``) on port 8000, backed by vLLM, with Ray Serve
autoscaling the model replicas. API as documented for ``ray.serve.llm`` (Ray >= 2.44):
https://docs.ray.io/en/latest/serve/llm/serving-llms.html
"""

from ray.serve.llm import LLMConfig, build_openai_app

llm_config = LLMConfig(
    model_loading_config={
        "model_id": "qwen2.5-7b",  # the name clients (and joulegate's tier.model) use
        "model_source": "Qwen/Qwen2.5-7B-Instruct",
    },
    deployment_config={"autoscaling_config": {"min_replicas": 1, "max_replicas": 4}},
    accelerator_type="L4",
    engine_kwargs={"max_model_len": 8192},
)

app = build_openai_app({"llm_configs": [llm_config]})
