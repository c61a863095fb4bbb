"""How a denoiser is optimised: for how long (a budget from the data's size), the loop (optimiser,
learning rate, EMA, resumable state) and the fast explicit forward/backward engine for the
built-in MLPs."""
