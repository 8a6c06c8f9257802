"""Models on disk: what a model source is, the one switch that loads a backbone, tokenizer, answering
model or span head from any source, the trained-model format, Hugging Face folders read and written,
and export. Imports the layers below (base, `text`, `runtime`, `models`)."""
