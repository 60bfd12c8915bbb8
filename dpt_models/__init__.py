"""The methods' models: plain nn.Modules built from a loaded CLIP and plain arguments (no config, no engine)."""
