"""aetool: autoencoders for anomaly scores, denoising and features; every variant a plugin."""
