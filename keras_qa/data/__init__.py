"""Examples: records checked one by one, file formats and hubs read into one schema, the bundled SQuAD
splits, and `load_examples` over all of them. Imports only the base modules (errors, files)."""
