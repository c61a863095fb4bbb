"""The diffusion maths, free of configs and files: noise schedules and noise-level conversions,
denoiser networks, what a network predicts, the training objective, and the samplers."""
