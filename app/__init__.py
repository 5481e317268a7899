"""The application around the model and the data: what the CLI does (run defaults, the config guard, one-line
errors), checkpoint I/O, prediction and export. It may import `lightning_modules`, `datamodules` and `core`; none of
them imports it."""
