"""The paper's LLM baselines: zero-shot prompting and instruction tuning, with their prompts, decoding and answer
parsing."""
