"""An offline world to run in: procedural toy images and captions (`render`), the downstream toy
datasets (`benchmarks`), contrastive pretraining of a small CLIP (`pretrain`) and its zero-shot
evaluation (`zeroshot`)."""
