"""The low layer, shared by the model (`lightning_modules`) and the data (`datamodules`): loading backbones and
tokenizers from hub names, folders, GGUF files and packages (`hub`), padding-free packing (`packing`), and the
rule of which classes configs may name (`class_paths`). It imports neither of them."""
