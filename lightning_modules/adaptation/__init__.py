"""Adaptation stages before label supervision: masked next-token prediction (MNTP, LLM2Vec's recipe)."""
