"""The methods' models: plain nn.Modules around a loaded CLIP, built from plain arguments."""
