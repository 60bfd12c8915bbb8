"""The model layer: CLIP loading, the prompt building blocks and every method's nn.Module, from plain
arguments (no config, no dataset, no engine). Nothing here imports a trainer, Dassl, `dassl_compat` or
yacs, so a notebook can build `dpt_models.dpt.DPTCLIP` without an engine (tests/test_models.py checks it);
the trainers (`trainers/`) build these models from their config nodes."""
