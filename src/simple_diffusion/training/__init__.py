"""How a denoiser is optimised: the loop (optimiser, learning rate, EMA, resumable state) and the
fast explicit forward/backward engine for the built-in MLPs."""
