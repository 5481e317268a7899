"""Label supervision (LS-LLaMA, LS-unLLaMA, encoder finetuning): the module, its head (pooling -> dropout -> linear),
the poolings, and save/from_pretrained."""
